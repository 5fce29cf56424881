"""The Intercom sink's test bench: the real Intercom sandbox on loopback with a bot admin,
a webhook receiver, and the worker's ingest + normaliser to read back what the sandbox sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.base.ingest import WebhookRequest
from connectors.base.settings import ConnectorSettings
from connectors.intercom.ingest import IntercomIngest
from connectors.intercom.normalize import IntercomNormaliser
from connectors.intercom.sink import IntercomSink
from sandboxes.base import LoopbackReceiver, ManualClock, run_sandboxes
from sandboxes.intercom import AdminSeed, IntercomSandbox
from schemas.models import (
    Actor,
    ActorKind,
    Contact,
    EntityData,
    EntityRef,
    EntityType,
    Envelope,
    Message,
    RawDelivery,
    SyncCommand,
)
from tests.sandboxes.intercom.conftest import SECRET, TOKEN, make_sandbox

__all__ = ["AGENT", "BOT", "Connector", "bot_parts", "connector_env", "new_parts", "settings_for"]

BOT = "991267009"
AGENT = "991267002"
ADMINS = (
    AdminSeed(id="991267001", name="Sandbox Owner", email="owner@sandbox.example"),
    AdminSeed(id=AGENT, name="Ada Agent", email="ada@sandbox.example"),
    AdminSeed(id=BOT, name="Deskstream", email="bot@sandbox.example"),
)
SECRET_STR = SecretStr(SECRET)


@dataclass
class Connector:
    sandbox: IntercomSandbox
    sink: IntercomSink
    api: httpx.AsyncClient  # a plain client, to arrange and inspect the workspace
    receiver: LoopbackReceiver
    clock: ManualClock
    settings: ConnectorSettings
    seen: int = 0
    counter: list[int] = field(default_factory=lambda: [0])

    async def events(self, settings: ConnectorSettings | None = None) -> list[Envelope]:
        """Webhooks sent since the last call, verified and normalised as the worker would
        (with the connector's settings unless others are given)."""
        assert self.sandbox.context.webhooks is not None
        await self.sandbox.context.webhooks.drain()
        ingest = IntercomIngest(connector_id="ic", secret=SECRET_STR)
        normaliser = IntercomNormaliser(connector_id="ic", settings=settings or self.settings)
        events: list[Envelope] = []
        for delivery in self.receiver.deliveries[self.seen :]:
            request = WebhookRequest(
                connector_id="ic",
                headers={k.lower(): v for k, v in delivery.headers.items()},
                body=delivery.body,
                received_at=self.clock.now(),
            )
            ingest.verify(request)
            raw = RawDelivery(
                delivery_id=ingest.delivery_id(request),
                connector_id="ic",
                platform="intercom",
                received_at=self.clock.now(),
                body=delivery.body,
                signature_verified=True,
            )
            events.extend(normaliser.normalise(raw))
        self.seen = len(self.receiver.deliveries)
        return events

    async def get(self, path: str) -> Any:
        response = await self.api.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.api.post(path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def conversation(self, email: str = "maria@example.com") -> tuple[str, str]:
        """A contact and the conversation she started: (contact id, conversation id)."""
        contact = await self.post("/contacts", {"email": email, "name": "Maria"})
        started = await self.post(
            "/conversations", {"from": {"type": "user", "id": contact["id"]}, "body": "Help"}
        )
        await self.events()  # the set-up's own notifications are not under test
        return contact["id"], started["conversation_id"]

    def command(
        self,
        entity_type: EntityType,
        action: str,
        data: EntityData,
        *,
        entity_id: str | None = None,
        changed: list[str] | None = None,
        options: dict[str, str] | None = None,
        contact: Contact | None = None,
        attempt: int = 1,
        key: str | None = None,
    ) -> SyncCommand:
        self.counter[0] += 1
        n = self.counter[0]
        return SyncCommand(
            command_id=f"cmd-{n}",
            link_id="lnk_test",
            target=EntityRef(
                platform="intercom", connector_id="ic", entity_type=entity_type, entity_id=entity_id
            ),
            action=action,
            idempotency_key=key or f"key-{n}",
            caused_by_event_id=f"evt-{n}",
            changed_fields=changed or [],
            data=data,
            issued_at=self.clock.now(),
            attempt=attempt,
            contact=contact,
            options=options or {},
        )

    def message(self, text: str, *, public: bool = True, **fields: Any) -> Message:
        return Message(
            case_id="zd-501",
            author=Actor(kind=ActorKind.AGENT, name="Zed Agent"),
            body_text=text,
            public=public,
            created_at=self.clock.now(),
            **fields,
        )


def settings_for(url: str) -> ConnectorSettings:
    return ConnectorSettings(
        platform="intercom",
        api_base_url=url,
        api_token=SecretStr(TOKEN),
        secret=SECRET_STR,
        service_account_id=BOT,
    )


@asynccontextmanager
async def connector_env(clock: ManualClock) -> AsyncIterator[Connector]:
    async with LoopbackReceiver() as receiver:
        sandbox = make_sandbox(
            clock=clock,
            webhook_url=f"{receiver.url}/webhooks/ic",
            admins=ADMINS,
            custom_attributes={
                "contact": {"plan": "string"},
                "conversation": {"region": "string"},
                "company": {},
            },
        )
        async with run_sandboxes([sandbox]) as running:
            url = running.url("intercom")
            settings = settings_for(url)
            sink = IntercomSink(
                connector_id="ic", settings=settings, now=lambda: clock.now().timestamp()
            )
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=url, headers=headers) as api:
                yield Connector(sandbox, sink, api, receiver, clock, settings)
            await sink.aclose()


def bot_parts(conversation: dict[str, Any], part_type: str) -> list[dict[str, Any]]:
    parts = conversation["conversation_parts"]["conversation_parts"]
    return [p for p in parts if p["author"]["id"] == BOT and p["part_type"] == part_type]


def new_parts(events: list[Envelope]) -> list[Envelope]:
    """The message events of new conversation parts: every conversation notification also
    repeats the conversation's first message (its source), which these tests set aside."""
    return [
        e
        for e in events
        if isinstance(e.data, Message) and (e.source.source_event_id or "").startswith("part:")
    ]
