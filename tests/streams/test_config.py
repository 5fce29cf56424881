from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ConfigurationError
from schemas.models import CaseStatus
from streams.config import load_sync_config

EXAMPLE = Path(__file__).parents[2] / "config" / "sync.example.yaml"


def test_the_shipped_example_is_valid_and_means_what_it_says() -> None:
    config = load_sync_config(EXAMPLE)
    assert config.connectors.intercom == "intercom"
    assert config.status_map.intercom_to_zendesk[CaseStatus.CLOSED] is CaseStatus.SOLVED
    assert config.status_map.zendesk_to_intercom[CaseStatus.SOLVED] is CaseStatus.CLOSED
    assert config.taxonomy.tags["billing"] == {"intercom": "billing-issue", "zendesk": "billing"}
    assert config.conflicts.owners == {"priority": "zendesk"}


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
