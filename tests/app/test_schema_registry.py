"""Which registry a process uses, and that its secrets stay out of messages (no registry needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.schema_registry import install_schema_registry, registry_url
from app.schema_registry.client import RegistryClient, safe_url
from app.settings import load_settings
from app.worker_process import free_port
from schemas.codec import schema_ids, use_schema_ids
from schemas.errors import SchemaRegistryError

EXTERNAL = "kafka.example:9092"


def test_an_explicit_url_wins(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path, schema_registry_url="https://registry.example/apis/ccompat/v7"
    )
    assert registry_url(settings) == "https://registry.example/apis/ccompat/v7"


def test_the_local_stack_brings_its_own_registry(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, kafka_bootstrap_servers=None)
    assert registry_url(settings) == "http://127.0.0.1:19181/apis/ccompat/v7"


@pytest.mark.parametrize(
    ("kafka", "url"),
    [(EXTERNAL, None), (EXTERNAL, "none"), (None, "none"), (None, "NONE")],
    ids=["external-kafka-unset", "external-kafka-none", "local-none", "local-NONE"],
)
def test_no_registry(tmp_path: Path, kafka: str | None, url: str | None) -> None:
    settings = load_settings(
        state_dir=tmp_path, kafka_bootstrap_servers=kafka, schema_registry_url=url
    )
    assert registry_url(settings) is None


def test_the_url_alias_every_tool_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://sr:8081")
    assert load_settings().schema_registry_url == "http://sr:8081"


def test_without_a_registry_the_single_object_encoding_is_written_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = schema_ids()
    settings = load_settings(state_dir=tmp_path, kafka_bootstrap_servers=EXTERNAL)
    try:
        with caplog.at_level(logging.WARNING):
            assert install_schema_registry(settings) is None
        assert schema_ids() is None
    finally:
        use_schema_ids(before)
    assert "no schema registry: values are written in the Avro single-object" in caplog.text


def test_the_password_never_reaches_settings_dumps_or_errors(tmp_path: Path) -> None:
    secret = "s3cr3t-registry-password"
    settings = load_settings(
        state_dir=tmp_path,
        schema_registry_user="svc",
        schema_registry_password=secret,
        schema_registry_url=f"http://svc:{secret}@127.0.0.1:{free_port()}/apis/ccompat/v7",
    )
    assert secret not in str(settings.masked())
    assert settings.masked()["schema_registry_password"] == "**********"
    with pytest.raises(SchemaRegistryError) as caught:
        install_schema_registry(settings)
    assert secret not in str(caught.value)
    assert "did not answer" in str(caught.value)
    assert safe_url("https://key:secret@sr.example:8443/x") == "https://sr.example:8443/x"


def test_both_password_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="either schema_registry_password or"):
        load_settings(
            state_dir=tmp_path,
            schema_registry_password="a",
            schema_registry_password_file=tmp_path / "p",
        )


def test_a_url_that_is_not_a_confluent_registry_is_named(tmp_path: Path) -> None:
    # Nothing listens: the message says what was asked and what to check.
    client = RegistryClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SchemaRegistryError, match=r"did not answer GET .*/subjects/x/versions"):
        client.versions("x")
    client.close()
