from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import load_settings
from schemas.errors import ConfigurationError


def test_connectors_come_from_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__support__PLATFORM", "zendesk")
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__support__SECRET", "shh")
    settings = load_settings()
    secret = settings.connectors["support"].signing_secret()
    assert secret is not None
    assert secret.get_secret_value() == "shh"


def test_secrets_never_appear_in_the_masked_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__support__PLATFORM", "zendesk")
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__support__SECRET", "hunter2-secret")
    settings = load_settings()
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.masked())


def test_secret_file_is_read_at_use_so_rotation_applies(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("first\n")
    settings = load_settings(connectors={"c": {"platform": "generic", "secret_file": path}})
    connector = settings.connectors["c"]
    assert connector.signing_secret().get_secret_value() == "first"  # type: ignore[union-attr]
    path.write_text("second")
    assert connector.signing_secret().get_secret_value() == "second"  # type: ignore[union-attr]


def test_missing_secret_file_names_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        connectors={"c": {"platform": "generic", "secret_file": tmp_path / "absent"}}
    )
    with pytest.raises(ConfigurationError, match="absent"):
        settings.connectors["c"].signing_secret()


def test_broker_count_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKSTREAM_KAFKA_BROKERS", "3")
    assert load_settings().kafka_brokers == 3


def test_plain_kafka_bootstrap_servers_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    assert load_settings().kafka_bootstrap_servers == "broker:9092"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        pytest.param({"kafka_brokers": 2}, "kafka_brokers", id="two-brokers"),
        pytest.param({"web_port": 0}, "web_port", id="port-zero"),
        pytest.param(
            {"connectors": {"c": {"platform": "freshdesk"}}}, "connectors.c.platform", id="platform"
        ),
        pytest.param(
            {"connectors": {"c": {"platform": "generic", "secret": "a", "secret_file": "/x"}}},
            "not both",
            id="two-secrets",
        ),
    ],
)
def test_invalid_settings_are_one_clear_error(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as raised:
        load_settings(**overrides)
    assert "DESKSTREAM_" in str(raised.value)
