"""Canonical events as the connectors' normalisers produce them, for planner tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base.links import case_link_id, contact_link_id
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    Contact,
    EntityData,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Priority,
    Source,
    SyncCommand,
    WriteOutcome,
    WriteResult,
)
from streams import state_codec
from streams.state import LinkState

__all__ = ["IC", "SF", "T0", "ZD", "TableEntry", "World"]

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
IC, ZD, SF = "ic", "zd", "sf"
CUSTOMER = Actor(kind=ActorKind.CUSTOMER, id="c-1", email="maria@example.com", name="Maria")
ADMIN = Actor(kind=ActorKind.AGENT, id="a-1", name="Ann")
ZD_AGENT = Actor(kind=ActorKind.AGENT, id="u-9", name="Sam")
SF_AGENT = Actor(kind=ActorKind.AGENT, id="005-1", name="Lee")
BOT = Actor(kind=ActorKind.INTEGRATION, id="bot")


class TableEntry:
    """A link's value in the ``links`` table, in the encoding the sync agent writes
    (``streams.state_codec``): every planner test goes through it."""

    def __init__(self) -> None:
        self.raw: bytes | None = None

    def read(self) -> LinkState | None:
        return state_codec.decode(self.raw) if self.raw is not None else None

    def write(self, state: LinkState) -> None:
        self.raw = state_codec.encode(state)

    @property
    def json(self) -> dict[str, Any] | None:
        state = self.read()
        return state.to_json() if state is not None else None


class World:
    """One Intercom conversation (``conv-1``) and its events, with a clock."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.clock = T0
        self.link = case_link_id("intercom", IC, "conv-1")
        #: the ticket's tags as Zendesk holds them: its webhooks always carry the full ticket
        self.ticket_tags: list[str] = []
        self.conversation_tags: list[str] = []
        #: each record's owner, carried by every report of it (as the platforms send it)
        self.owners: dict[Platform, Actor | None] = {}

    def _owner(self, platform: Platform, given: Actor | str | None) -> Actor | None:
        """``given`` as the record's new owner; ``"same"``: the one it has."""
        if given != "same":
            assert not isinstance(given, str)
            self.owners[platform] = given
        return self.owners.get(platform)

    def tick(self, seconds: int = 1) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def _envelope(
        self,
        platform: Platform,
        connector: str,
        entity_type: EntityType,
        entity_id: str,
        data: EntityData,
        *,
        actor: Actor,
        op: Op = Op.UPDATE,
        changed: list[str] | None = None,
        link: str | None = None,
        at: datetime | None = None,
    ) -> Envelope:
        n = next(self._ids)
        return Envelope(
            event_id=f"evt-{n}",
            source=Source(
                platform=platform,
                connector_id=connector,
                entity_type=entity_type,
                entity_id=entity_id,
                event_type="test",
                source_event_id=f"src-{n}",
                actor=actor,
                occurred_at=at or self.tick(),
            ),
            op=op,
            changed_fields=changed or [],
            data=data,
            link_id=link or self.link,
            ingested_at=self.clock,
        )

    def conversation(
        self,
        *,
        tags: list[str] | None = None,
        status: CaseStatus = CaseStatus.OPEN,
        actor: Actor = CUSTOMER,
        changed: list[str] | None = None,
        op: Op = Op.UPDATE,
        at: datetime | None = None,
        **case: Any,
    ) -> Envelope:
        if tags is not None:
            self.conversation_tags = tags
        data = Case(
            subject="Charged twice",
            status=status,
            tags=self.conversation_tags,
            requester=CUSTOMER,
            priority=case.pop("priority", Priority.NORMAL),
            assignee=self._owner(Platform.INTERCOM, case.pop("assignee", "same")),
            **case,
        )
        return self._envelope(
            Platform.INTERCOM,
            IC,
            EntityType.CASE,
            "conv-1",
            data,
            actor=actor,
            changed=changed,
            op=op,
            at=at,
        )

    def part(
        self, part_id: str, text: str, *, author: Actor = CUSTOMER, public: bool = True
    ) -> Envelope:
        data = Message(
            case_id="conv-1", author=author, body_text=text, public=public, created_at=self.tick()
        )
        return self._envelope(
            Platform.INTERCOM, IC, EntityType.MESSAGE, part_id, data, actor=author
        )

    def ticket(
        self,
        *,
        status: CaseStatus = CaseStatus.OPEN,
        tags: list[str] | None = None,
        actor: Actor = ZD_AGENT,
        changed: list[str] | None = None,
        ticket_id: str = "t-7",
        link: str | None = None,
        op: Op = Op.UPDATE,
        at: datetime | None = None,
        assignee: Actor | str | None = "same",
    ) -> Envelope:
        if tags is not None:
            self.ticket_tags = tags
        data = Case(
            subject="Charged twice",
            status=status,
            tags=self.ticket_tags,
            requester=CUSTOMER,
            priority=Priority.NORMAL,
            assignee=self._owner(Platform.ZENDESK, assignee),
        )
        return self._envelope(
            Platform.ZENDESK,
            ZD,
            EntityType.CASE,
            ticket_id,
            data,
            actor=actor,
            changed=changed,
            link=link,
            op=op,
            at=at,
        )

    def comment(
        self,
        comment_id: str,
        text: str,
        *,
        author: Actor = ZD_AGENT,
        public: bool = True,
        actor: Actor | None = None,
    ) -> Envelope:
        data = Message(
            case_id="t-7", author=author, body_text=text, public=public, created_at=self.tick()
        )
        return self._envelope(
            Platform.ZENDESK, ZD, EntityType.MESSAGE, comment_id, data, actor=actor or author
        )

    def case(
        self,
        *,
        status: CaseStatus = CaseStatus.OPEN,
        priority: Priority = Priority.NORMAL,
        actor: Actor = SF_AGENT,
        changed: list[str] | None = None,
        case_id: str = "500-1",
        at: datetime | None = None,
        assignee: Actor | str | None = "same",
    ) -> Envelope:
        """A Salesforce Case change (CDC names its changed fields)."""
        data = Case(
            subject="Charged twice",
            status=status,
            requester=CUSTOMER,
            priority=priority,
            assignee=self._owner(Platform.SALESFORCE, assignee),
        )
        return self._envelope(
            Platform.SALESFORCE,
            SF,
            EntityType.CASE,
            case_id,
            data,
            actor=actor,
            changed=changed,
            at=at,
        )

    def case_comment(
        self,
        comment_id: str,
        text: str,
        *,
        author: Actor = SF_AGENT,
        public: bool = True,
        actor: Actor | None = None,
    ) -> Envelope:
        """A CaseComment (``IsPublished``: public), as polling reads it."""
        data = Message(
            case_id="500-1", author=author, body_text=text, public=public, created_at=self.tick()
        )
        return self._envelope(
            Platform.SALESFORCE, SF, EntityType.MESSAGE, comment_id, data, actor=actor or author
        )

    def contact(
        self,
        platform: Platform,
        connector: str,
        entity_id: str,
        *,
        changed: list[str] | None = None,
        actor: Actor = CUSTOMER,
        at: datetime | None = None,
        **fields: Any,
    ) -> Envelope:
        data = Contact(emails=["maria@example.com"], **fields)
        link = contact_link_id(
            "maria@example.com",
            platform=platform.value,
            connector_id=connector,
            entity_id=entity_id,
        )
        return self._envelope(
            platform,
            connector,
            EntityType.CONTACT,
            entity_id,
            data,
            actor=actor,
            changed=changed,
            link=link,
            at=at,
        )

    def result(
        self,
        command: SyncCommand,
        target_id: str | None,
        *,
        created: dict[str, str] | None = None,
        fingerprints: list[str] | None = None,
        outcome: WriteOutcome = WriteOutcome.WRITTEN,
        error: str | None = None,
    ) -> WriteResult:
        """What the sink answers to ``command``, now."""
        return WriteResult(
            command_id=command.command_id,
            link_id=command.link_id,
            target=command.target,
            outcome=outcome,
            target_entity_id=target_id,
            latency_ms=12.0,
            fingerprints=fingerprints or [],
            error=error,
            written_at=self.tick(),
            created_ids=created or {},
        )
