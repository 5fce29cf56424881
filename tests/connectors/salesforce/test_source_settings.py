"""Salesforce sources named in the environment, as a worker reads them: the registry builds
each enabled kind with its Salesforce settings; a bad value is refused at start-up."""

from __future__ import annotations

import pytest

from app.settings import load_settings
from connectors.base.registry import build_sources
from connectors.salesforce.source_cdc import SalesforceCaseChanges
from connectors.salesforce.source_comments import SalesforceComments
from connectors.salesforce.source_reconcile import SalesforceReconcile
from schemas.errors import ConfigurationError

PREFIX = "DESKSTREAM_CONNECTORS__sf__"
BASE = {
    f"{PREFIX}PLATFORM": "salesforce",
    f"{PREFIX}CLIENT_ID": "app",
    f"{PREFIX}REFRESH_TOKEN": "token",
}


async def test_the_environment_names_the_kinds_and_their_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        **BASE,
        f"{PREFIX}SOURCES__cdc_case__TRANSPORT": "cometd",
        f"{PREFIX}SOURCES__cdc_case__MAX_IN_FLIGHT": "20",
        f"{PREFIX}SOURCES__comments__OVERLAP_SECONDS": "30",
        f"{PREFIX}SOURCES__reconcile__WINDOW_SECONDS": "900",
        f"{PREFIX}SOURCES__reconcile__ENABLED": "false",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    sources = build_sources("sf", settings.connectors["sf"])
    try:
        assert [type(s) for s in sources] == [SalesforceCaseChanges, SalesforceComments]
        cdc, comments = sources
        assert isinstance(cdc, SalesforceCaseChanges)
        assert isinstance(comments, SalesforceComments)
        assert (cdc.name, cdc.transport, cdc.channel) == (
            "sf.cdc_case",
            "cometd",
            "/data/CaseChangeEvent",
        )
        assert comments.cursor.overlap.total_seconds() == 30
    finally:
        for source in sources:
            await source.aclose()
    assert SalesforceReconcile.kind in settings.connectors["sf"].sources  # named, disabled


def test_an_unknown_transport_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**BASE, f"{PREFIX}SOURCES__cdc_case__TRANSPORT": "smoke"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="transport"):
        load_settings()
