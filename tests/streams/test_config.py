from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemas.errors import ConfigurationError
from schemas.models import CaseStatus, Priority
from streams.config import SyncConfig, load_sync_config
from streams.config_legacy import legacy_notice

CONFIG = Path(__file__).parents[2] / "config"
EXAMPLE = CONFIG / "sync.example.yaml"
#: the example as it was written in the first format (version 1)
FIRST_FORMAT = Path(__file__).parent / "data" / "sync.v1.yaml"


def test_the_shipped_example_is_valid_and_means_what_it_says() -> None:
    config = load_sync_config(EXAMPLE)
    assert config.connectors == {"intercom": "intercom", "zendesk": "zendesk"}
    to_zendesk, to_intercom = (
        config.route("intercom", "zendesk"),
        config.route("zendesk", "intercom"),
    )
    assert to_zendesk is not None
    assert to_intercom is not None
    assert to_zendesk.create.enabled
    assert to_zendesk.create.custom_fields["plan"].field == "360012345"
    assert to_zendesk.status.map[CaseStatus.CLOSED] is CaseStatus.SOLVED
    assert to_intercom.status.map[CaseStatus.SOLVED] is CaseStatus.CLOSED
    assert to_intercom.messages.visibility == "public"
    assert not to_intercom.create.enabled
    assert config.taxonomy.tags["billing"] == {"intercom": "billing-issue", "zendesk": "billing"}
    assert config.conflicts.owners == {"priority": "zendesk"}


@pytest.mark.parametrize("path", sorted(CONFIG.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_sync_config(path)
    assert len(config.connectors) >= 2
    assert config.routes


def test_the_three_member_example_chains_through_zendesk() -> None:
    config = load_sync_config(CONFIG / "intercom-zendesk-salesforce.example.yaml")
    assert set(config.connectors) == {"intercom", "zendesk", "salesforce"}
    assert config.route("intercom", "salesforce") is None  # values travel through Zendesk
    to_case = config.route("zendesk", "salesforce")
    assert to_case is not None
    assert to_case.create.when.always
    assert to_case.priority.map[Priority.URGENT] is Priority.HIGH


def test_the_first_format_is_read_as_the_same_routes() -> None:
    """A version-1 file means exactly what its version-2 rewrite (the shipped example)
    means."""
    assert load_sync_config(FIRST_FORMAT) == load_sync_config(EXAMPLE)


def test_config_check_shows_a_first_format_file_as_routes() -> None:
    notice = legacy_notice(yaml.safe_load(FIRST_FORMAT.read_text()))
    shown = yaml.safe_load(notice.split("\n", 1)[1])
    assert SyncConfig.model_validate(shown) == load_sync_config(EXAMPLE)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("connectors: {intercom: a}", "connectors.zendesk", id="missing-connector"),
        pytest.param(
            "connectors: {intercom: a, zendesk: b}\nflows: {escalate: {}}",
            "flows.escalate",
            id="unknown-flow",
        ),
        pytest.param(
            "connectors: {intercom: a, zendesk: b}\n"
            "status_map: {intercom_to_zendesk: {closed: done}}",
            "status_map.intercom_to_zendesk.closed",
            id="unknown-status",
        ),
        pytest.param(
            "connectors: {intercom: a, zendesk: b}\n"
            "custom_fields: {x: {zendesk_field_id: 1, source: nowhere}}",
            "must start with one of",
            id="bad-field-source",
        ),
        pytest.param("connectors: [", "not valid YAML", id="yaml"),
        pytest.param(
            "version: 2\nconnectors: {intercom: a, zendesk: b}\n"
            "routes: [{from: intercom, to: salesforce}]",
            "'salesforce' is not among the connectors",
            id="route-to-unknown",
        ),
        pytest.param(
            "version: 2\nconnectors: {intercom: a, freshdesk: b}\n"
            "routes: [{from: intercom, to: freshdesk}]",
            "'freshdesk' cannot take part",
            id="unknown-platform",
        ),
        pytest.param(
            "version: 2\nconnectors: {intercom: a, zendesk: b}\n"
            "routes: [{from: intercom, to: zendesk}, {from: intercom, to: zendesk}]",
            "merge them",
            id="duplicate-route",
        ),
        pytest.param(
            "version: 2\nconnectors: {intercom: a, zendesk: b}\n"
            "routes: [{from: zendesk, to: zendesk}]",
            "joins two platforms",
            id="route-to-itself",
        ),
        pytest.param(
            "version: 2\nconnectors: {intercom: a, zendesk: b}\n"
            "routes: [{from: intercom, to: zendesk}]\nprofile_fields: {plan: hubspot_to_zendesk}",
            "profile_fields.plan",
            id="profile-direction",
        ),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=fragment.replace(".", r"\.").replace("[", r"\[")):
        load_sync_config(path)


def test_a_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="DESKSTREAM_SYNC_CONFIG"):
        load_sync_config(tmp_path / "absent.yaml")
