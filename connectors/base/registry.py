"""Which class implements each platform's ingest, normaliser and sink.

Entries are "module:Class" strings, imported on first use: ``connectors.base`` never imports
a platform at import time, and a platform whose connector has not shipped yet is a clear
configuration error at start-up rather than an ImportError in the middle of a request.

Every part is built per connector (one platform account), from that connector's settings:
the Zendesk normaliser needs the account's integration user to recognise its own writes.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

from prometheus_client.registry import Collector

from connectors.base.adapter import FieldInventory, PlatformAdapter
from connectors.base.chat import ChatBridge
from connectors.base.ingest import IngestConnector
from connectors.base.normalize import Normaliser
from connectors.base.settings import ConnectorSettings, Mode, SourceSettings
from connectors.base.sink import Sink
from connectors.base.source import Source
from schemas.errors import ConfigurationError

__all__ = [
    "POLLING_KINDS",
    "adapter_for",
    "adapter_platforms",
    "build_backfill",
    "build_chat_bridge",
    "build_ingest_connector",
    "build_normaliser",
    "build_sink",
    "build_source",
    "build_sources",
    "chat_platforms",
    "connector_collectors",
    "delivery_mode",
    "ingest_platforms",
    "read_inventory",
    "sink_platforms",
    "source_settings",
]

_INGEST: dict[str, str] = {
    "generic": "connectors.generic.ingest:GenericIngest",
    "zendesk": "connectors.zendesk.ingest:ZendeskIngest",
    "intercom": "connectors.intercom.ingest:IntercomIngest",
    "zendesk_conversations": "connectors.zendesk_conversations.ingest:SunshineIngest",
    "ai_agent": "connectors.ai_agent.ingest:AiAgentIngest",
}

_NORMALISERS: dict[str, str] = {
    "generic": "connectors.generic.normalize:GenericNormaliser",
    "zendesk": "connectors.zendesk.normalize:ZendeskNormaliser",
    "intercom": "connectors.intercom.normalize:IntercomNormaliser",
    "salesforce": "connectors.salesforce.normalize:SalesforceNormaliser",
    "zendesk_conversations": "connectors.zendesk_conversations.normalize:SunshineNormaliser",
    "ai_agent": "connectors.ai_agent.normalize:AiAgentNormaliser",
}

_SINKS: dict[str, str] = {
    "zendesk": "connectors.zendesk.sink:ZendeskSink",
    "intercom": "connectors.intercom.sink:IntercomSink",
    "salesforce": "connectors.salesforce.sink:SalesforceSink",
    "ai_agent": "connectors.ai_agent.sink:AiAgentSink",
}

#: live chat desks (``connectors.base.chat``): where a hand-off continues as a conversation
_CHAT_BRIDGES: dict[str, str] = {
    "zendesk_conversations": "connectors.zendesk_conversations.bridge:SunshineBridge",
}

_ADAPTERS: dict[str, str] = {
    "zendesk": "connectors.zendesk.adapter:ADAPTER",
    "intercom": "connectors.intercom.adapter:ADAPTER",
    "salesforce": "connectors.salesforce.adapter:ADAPTER",
}

_INVENTORIES: dict[str, str] = {
    "zendesk": "connectors.zendesk.inventory:read_inventory",
    "intercom": "connectors.intercom.inventory:read_inventory",
    "salesforce": "connectors.salesforce.inventory:read_inventory",
}

#: pull-based feeds by platform and kind (``ConnectorSettings.sources``)
_SOURCES: dict[str, str] = {
    "zendesk.tickets": "connectors.zendesk.incremental:ZendeskIncrementalTickets",
    "zendesk.ticket_events": "connectors.zendesk.ticket_events:ZendeskTicketEvents",
    "zendesk.users": "connectors.zendesk.ticket_events:ZendeskUsers",
    "intercom.conversations": "connectors.intercom.polling:IntercomConversationPoll",
    "intercom.contacts": "connectors.intercom.polling:IntercomContactPoll",
    "intercom.reconcile": "connectors.intercom.polling:IntercomReconcile",
    "zendesk.reconcile": "connectors.zendesk.reconcile:ZendeskReconcile",
    "salesforce.cdc_case": "connectors.salesforce.source_cdc:SalesforceCaseChanges",
    "salesforce.cdc_contact": "connectors.salesforce.source_cdc:SalesforceContactChanges",
    "salesforce.comments": "connectors.salesforce.source_comments:SalesforceComments",
    "salesforce.reconcile": "connectors.salesforce.source_reconcile:SalesforceReconcile",
}

#: what a platform counts per process, outside any command (a worker exports them all)
_COLLECTORS: dict[str, str] = {
    "salesforce": "connectors.salesforce.auth:TOKEN_FAILURES",
}


#: the polling fallback of each platform with webhooks: the kinds ``mode`` ``polling`` and
#: ``both`` run (with default settings unless ``sources`` configures them)
POLLING_KINDS: dict[str, tuple[str, ...]] = {
    "zendesk": ("ticket_events", "users"),
    "intercom": ("conversations", "contacts"),
}
#: polling kinds that run only when ``sources`` enables them (the ticket export: states, not
#: changes, so the ticket events cover it)
_OPTIONAL_POLLING: dict[str, tuple[str, ...]] = {"zendesk": ("tickets",)}


def _polling(platform: str) -> tuple[str, ...]:
    return POLLING_KINDS.get(platform, ()) + _OPTIONAL_POLLING.get(platform, ())


#: one-shot readers of existing records by platform (``deskstream backfill``)
_BACKFILLS: dict[str, str] = {
    "intercom": "connectors.intercom.backfill:IntercomBackfill",
    "zendesk": "connectors.zendesk.ticket_events:ZendeskBackfill",
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
    window = settings.signature_window_seconds
    connector = cls(
        connector_id=connector_id,
        secret=settings.signing_secret(),
        signature_window=None if window is None else timedelta(seconds=window),
    )
    assert isinstance(connector, IngestConnector)
    return connector


def build_normaliser(connector_id: str, settings: ConnectorSettings) -> Normaliser:
    normaliser = _load(_NORMALISERS, settings.platform, "normaliser")(
        connector_id=connector_id, settings=settings
    )
    assert isinstance(normaliser, Normaliser)
    return normaliser


def build_sink(connector_id: str, settings: ConnectorSettings) -> Sink:
    sink = _load(_SINKS, settings.platform, "sink")(connector_id=connector_id, settings=settings)
    assert isinstance(sink, Sink)
    return sink


def build_chat_bridge(connector_id: str, settings: ConnectorSettings) -> ChatBridge:
    bridge = _load(_CHAT_BRIDGES, settings.platform, "live chat bridge")(
        connector_id=connector_id, settings=settings
    )
    assert isinstance(bridge, ChatBridge)
    return bridge


def chat_platforms() -> frozenset[str]:
    return frozenset(_CHAT_BRIDGES)


def sink_platforms() -> frozenset[str]:
    return frozenset(_SINKS)


def delivery_mode(settings: ConnectorSettings) -> Mode:
    """How changes reach Deskstream from this connector (``ConnectorSettings.mode``)."""
    if settings.mode is not None:
        return settings.mode
    polling = _polling(settings.platform)
    enabled = any(k in polling and s.enabled for k, s in settings.sources.items())
    return "both" if enabled else "webhooks"


def source_settings(settings: ConnectorSettings, kind: str) -> SourceSettings:
    """A feed's settings: configured, or the defaults of a polling kind the mode runs."""
    return settings.sources.get(kind) or SourceSettings()


def source_kinds(connector_id: str, settings: ConnectorSettings) -> list[str]:
    """The kinds of feed the connector runs: those ``sources`` enables, plus, with ``mode``
    set to ``polling`` or ``both``, the platform's polling kinds (``POLLING_KINDS``) not
    disabled there. ``mode`` ``webhooks`` with a polling kind enabled is a contradiction the
    operator must resolve (``ConfigurationError``)."""
    mode = settings.mode
    kinds = {kind for kind, source in settings.sources.items() if source.enabled}
    if mode == "webhooks":
        contradicting = sorted(kinds & set(_polling(settings.platform)))
        if contradicting:
            raise ConfigurationError(
                f"connector {connector_id!r} has mode webhooks but enables the polling "
                f"source(s) {', '.join(contradicting)}; set DESKSTREAM_CONNECTORS__"
                f"{connector_id}__MODE=both to poll beside the webhooks, or disable them"
            )
    elif mode is not None:
        polling = POLLING_KINDS.get(settings.platform, ())
        if not polling:
            raise ConfigurationError(
                f"connector {connector_id!r} has mode {mode}, but this version cannot poll "
                f"{settings.platform}; set its MODE to webhooks (or leave it unset)"
            )
        disabled = {kind for kind, source in settings.sources.items() if not source.enabled}
        kinds |= set(polling) - disabled
    return sorted(kinds)


def build_source(connector_id: str, settings: ConnectorSettings, kind: str) -> Source:
    """One pull-based feed of the connector, named ``<connector id>.<kind>``."""
    cls = _load(_SOURCES, f"{settings.platform}.{kind}", "source")
    source = cls(
        connector_id=connector_id, settings=settings, source=source_settings(settings, kind)
    )
    assert isinstance(source, Source)
    return source


def build_backfill(
    connector_id: str,
    settings: ConnectorSettings,
    source: SourceSettings,
    *,
    since: int | None,
    filters: dict[str, str],
) -> Source:
    """A one-shot read of the connector's existing records (its batches end once it caught
    up), sent as its polls send them: ``deskstream backfill``."""
    source_object = _load(_BACKFILLS, settings.platform, "backfill")(
        connector_id=connector_id, settings=settings, source=source
    )
    source_object.configure(since=since, filters=filters)
    assert isinstance(source_object, Source)
    return source_object


def build_sources(connector_id: str, settings: ConnectorSettings) -> list[Source]:
    """The connector's pull-based feeds (``source_kinds``)."""
    return [
        build_source(connector_id, settings, kind) for kind in source_kinds(connector_id, settings)
    ]


def connector_collectors() -> list[Collector]:
    """The platforms' process-wide metrics (Salesforce's failed token requests), for the
    worker's registry: what its sinks and sources build counts into them."""
    collectors = [_load(_COLLECTORS, platform, "metrics") for platform in sorted(_COLLECTORS)]
    assert all(isinstance(c, Collector) for c in collectors)
    return collectors


def ingest_platforms() -> frozenset[str]:
    """Platforms whose webhooks a worker of this version can take in."""
    return frozenset(_INGEST)


def adapter_for(platform: str) -> PlatformAdapter:
    """What the sync stage may know about ``platform`` (``connectors.base.adapter``)."""
    adapter = _load(_ADAPTERS, platform, "sync adapter")
    assert isinstance(adapter, PlatformAdapter)
    return adapter


def adapter_platforms() -> frozenset[str]:
    """The platforms a sync config can name."""
    return frozenset(_ADAPTERS)


async def read_inventory(settings: ConnectorSettings) -> FieldInventory | None:
    """What the account behind ``settings`` holds (custom fields, contact attributes), for
    ``deskstream config check``; None when this version cannot read that platform's."""
    if settings.platform not in _INVENTORIES:
        return None
    inventory = await _load(_INVENTORIES, settings.platform, "field inventory")(settings)
    assert isinstance(inventory, FieldInventory)
    return inventory
