"""Which class implements each platform's ingest and normaliser.

Entries are "module:Class" strings, imported on first use: ``connectors.base`` never imports
a platform at import time, and a platform whose connector has not shipped yet is a clear
configuration error at start-up rather than an ImportError in the middle of a request.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from app.errors import ConfigurationError
from app.settings import ConnectorSettings
from connectors.base.ingest import IngestConnector
from connectors.base.normalize import Normaliser

__all__ = ["build_ingest_connector", "normaliser_for"]

_INGEST: dict[str, str] = {
    "generic": "connectors.generic.ingest:GenericIngest",
}

_NORMALISERS: dict[str, str] = {
    "generic": "connectors.generic.normalize:GenericNormaliser",
}


def _load(table: dict[str, str], platform: str, what: str) -> Any:
    target = table.get(platform)
    if target is None:
        raise ConfigurationError(
            f"no {what} for platform {platform!r} in this version of Deskstream "
            f"(available: {', '.join(sorted(table))}); pick one of those for the connector"
        )
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_ingest_connector(connector_id: str, settings: ConnectorSettings) -> IngestConnector:
    cls = _load(_INGEST, settings.platform, "webhook ingest")
    connector = cls(connector_id=connector_id, secret=settings.signing_secret())
    assert isinstance(connector, IngestConnector)
    return connector


@cache
def normaliser_for(platform: str) -> Normaliser:
    normaliser = _load(_NORMALISERS, platform, "normaliser")()
    assert isinstance(normaliser, Normaliser)
    return normaliser
