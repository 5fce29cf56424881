"""``deskstream doctor``'s lines from plain settings, stored positions and a worker's gauges."""

from __future__ import annotations

from pydantic import SecretStr

from app.doctor_cli import _polling, _webhooks
from connectors.base.settings import ConnectorSettings, SourceSettings


def test_a_connector_polling_beside_webhooks_shows_both_and_its_positions() -> None:
    connector = ConnectorSettings(platform="intercom", secret=SecretStr("s"), mode="both")
    view = {
        "deskstream_webhook_last_delivery_age_seconds": {"ic": 412.0},
        "deskstream_webhooks_silent": {"ic": 1.0},
    }
    line = _webhooks("ic", connector, view)
    assert line.startswith("mode both: the platform posts to /webhooks/ic; 1 signing secret")
    assert "last 412 s ago, SILENT" in line
    stored = {"ic.conversations": {"stored_at": "2020-01-01T00:00:00+00:00", "position_time": "t"}}
    polling, bad = _polling("ic", connector, stored)
    assert not bad
    assert "contacts: never stored a position" in polling
    assert "conversations: position stored" in polling


def test_polling_only_and_contradictions_are_named() -> None:
    only = ConnectorSettings(platform="zendesk", mode="polling")
    assert "refuses deliveries (404)" in _webhooks("zd", only, {})
    wrong = ConnectorSettings(
        platform="zendesk", mode="webhooks", sources={"ticket_events": SourceSettings()}
    )
    text, bad = _polling("zd", wrong, {})
    assert bad
    assert "MODE=both" in text
    assert "NO signing secret" in _webhooks("zd", ConnectorSettings(platform="zendesk"), {})
