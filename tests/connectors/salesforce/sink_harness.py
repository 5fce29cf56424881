"""A Salesforce connector as a worker builds it (``ConnectorSettings`` → the registry's sink and
normaliser) against the in-process sandbox, and the commands the sync stage sends it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.base.registry import build_normaliser
from connectors.base.settings import ConnectorSettings
from connectors.salesforce.normalize import SalesforceNormaliser
from connectors.salesforce.sink import SalesforceSink
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityData,
    EntityRef,
    EntityType,
    Message,
    Platform,
    Priority,
    SyncCommand,
)
from tests.sandboxes.salesforce.conftest import SalesforceEnv

__all__ = [
    "AGENT",
    "CUSTOMER",
    "LINK",
    "T0",
    "Org",
    "case",
    "command",
    "connector_settings",
    "message",
    "open_org",
    "upsert",
]

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
LINK = "lnk_" + "b" * 32
CUSTOMER = Actor(kind=ActorKind.CUSTOMER, id="ic-1", email="maria@example.com", name="Maria")
AGENT = Actor(kind=ActorKind.AGENT, id="zd-7", name="Paul")


def connector_settings(env: SalesforceEnv, **more: Any) -> ConnectorSettings:
    """What ``DESKSTREAM_CONNECTORS__sf__*`` would give a worker for this sandbox org."""
    values: dict[str, Any] = {
        "platform": "salesforce",
        "login_url": env.url,
        "client_id": env.config.consumer_key,
        "client_secret": SecretStr(env.config.consumer_secret),
        "refresh_token": SecretStr(env.config.refresh_token),
    }
    return ConnectorSettings.model_validate(values | more)


@dataclass
class Org:
    env: SalesforceEnv
    settings: ConnectorSettings
    sink: SalesforceSink
    normaliser: SalesforceNormaliser

    def records(self, sobject: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.env.sandbox.org.store.records[sobject]
        return found

    def comments_on(self, case_id: str) -> list[dict[str, Any]]:
        return [c for c in self.records("CaseComment").values() if c["ParentId"] == case_id]


@asynccontextmanager
async def open_org(
    env: SalesforceEnv, *, http_timeout_s: float = 30.0, **more: Any
) -> AsyncIterator[Org]:
    settings = connector_settings(env, **more)
    async with httpx.AsyncClient(timeout=http_timeout_s) as http:
        sink = SalesforceSink(connector_id="sf", settings=settings, http=http)
        normaliser = build_normaliser("sf", settings)
        assert isinstance(normaliser, SalesforceNormaliser)
        yield Org(env, settings, sink, normaliser)
        await sink.aclose()


def message(author: Actor, body: str, minutes: int, **more: Any) -> Message:
    values: dict[str, Any] = {"public": True} | more
    return Message(
        case_id="ic-conv-1",
        author=author,
        body_text=body,
        created_at=T0 + timedelta(minutes=minutes),
        **values,
    )


def case(**more: Any) -> Case:
    values: dict[str, Any] = {
        "subject": "Refund for order 1234",
        "status": CaseStatus.OPEN,
        "priority": Priority.HIGH,
        "channel": "email",
        "custom_fields": {"ai_handoff_reason": "customer asked for a person"},
    }
    return Case(**(values | more))


def command(
    entity: EntityType,
    action: CommandAction,
    data: EntityData,
    *,
    link: str = LINK,
    target: str | None = None,
    key: str = "cmd-1",
    **more: Any,
) -> SyncCommand:
    return SyncCommand(
        command_id=key,
        link_id=link,
        target=EntityRef(
            platform=Platform.SALESFORCE, connector_id="sf", entity_type=entity, entity_id=target
        ),
        action=action,
        idempotency_key=key,
        caused_by_event_id="evt-1",
        data=data,
        issued_at=T0,
        **more,
    )


def upsert(thread: list[Message], contact: Contact | None = None, **more: Any) -> SyncCommand:
    contact = contact or Contact(emails=["maria@example.com"], name="Maria Lopez")
    return command(
        EntityType.CASE,
        CommandAction.UPSERT,
        more.pop("data", None) or case(),
        thread=thread,
        contact=contact,
        options={"source_platform": "intercom"},
        **more,
    )
