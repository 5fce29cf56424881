"""The Intercom connector with the real sync planner: Zendesk changes planned into Intercom
commands, executed by the sink against the sandbox, and the sandbox's webhooks for them fed
back through the normaliser. The planner must recognise every echo: by our bot admin (layer
one) and, with the bot unknown to the normaliser, by the sink's fingerprints and mirrors alone
(layer two)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.base.links import case_link_id
from connectors.base.settings import ConnectorSettings
from connectors.base.sink import SinkResult
from sandboxes.base import ManualClock
from schemas.models import (
    Actor,
    ActorKind,
    AuditRecord,
    Case,
    CaseStatus,
    EntityData,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Priority,
    Source,
)
from streams.config import SyncConfig
from streams.outcomes import success
from streams.sync import SyncPlanner
from tests.connectors.intercom.sink_env import AGENT, Connector, connector_env
from tests.streams.builders import TableEntry


class Round:
    """A link's planner state plus the sandbox: plan events, execute Intercom commands."""

    def __init__(self, env: Connector, link: str) -> None:
        self.env = env
        self.link = link
        self.planner = SyncPlanner(
            SyncConfig.model_validate({"connectors": {"intercom": "ic", "zendesk": "zd"}})
        )
        self.table = TableEntry()
        self.serial = 0

    @property
    def state(self) -> dict[str, Any] | None:
        """The link's table entry, as JSON."""
        return self.table.json

    def plan(self, events: list[Envelope]) -> tuple[list[AuditRecord], list[Any]]:
        audits: list[AuditRecord] = []
        commands: list[Any] = []
        for event in events:
            if event.link_id != self.link:
                continue
            plan = self.planner.on_event(self.table.read(), event, now=self.env.clock.now())
            self.table.write(plan.state)
            audits += plan.audits
            commands += plan.commands
        return audits, commands

    async def execute(self, commands: list[Any]) -> None:
        for command in commands:
            if command.target.platform is Platform.ZENDESK:
                # The Zendesk sink is not under test: the ticket it would create is #501.
                result = SinkResult("501", 201, 1)
            else:
                result = await self.env.sink.execute(command)
                assert result.written, result.detail
            write, _ = success(command, result, latency_ms=1.0, now=self.env.clock.now())
            plan = self.planner.on_write(self.table.read(), write, now=self.env.clock.now())
            self.table.write(plan.state)

    def zendesk(
        self, entity_type: EntityType, entity_id: str, data: EntityData, changed: list[str]
    ) -> Envelope:
        self.serial += 1
        self.env.clock.advance(5)
        at = self.env.clock.now()
        return Envelope(
            event_id=f"zd-event-{self.serial}",
            source=Source(
                platform=Platform.ZENDESK,
                connector_id="zd",
                entity_type=entity_type,
                entity_id=entity_id,
                event_type="zen:event-type:ticket.changed",
                actor=Actor(kind=ActorKind.AGENT, id="7"),
                occurred_at=at,
            ),
            op=Op.UPDATE,
            changed_fields=changed,
            data=data,
            link_id=self.link,
            ingested_at=at,
        )


@pytest.fixture
async def escalated(clock: ManualClock) -> AsyncIterator[Round]:
    """A conversation tagged ``escalate`` by an agent and mirrored as Zendesk ticket #501."""
    async with connector_env(clock) as env:
        _, cid = await env.conversation()
        env.seen = 0  # the planner needs the conversation's own history
        tag = await env.post("/tags", {"name": "escalate"})
        await env.post(f"/conversations/{cid}/tags", {"id": tag["id"], "admin_id": AGENT})
        round_ = Round(env, case_link_id("intercom", "ic", cid))
        _, commands = round_.plan(await env.events())
        assert [c.target.platform for c in commands] == [Platform.ZENDESK]
        await round_.execute(commands)
        yield round_


def _echo_decisions(audits: list[AuditRecord]) -> list[tuple[str, str]]:
    return [(a.decision, a.reason.split(":")[0]) for a in audits]


async def _zendesk_changes(round_: Round, settings: ConnectorSettings | None) -> list[AuditRecord]:
    """Solve the ticket, tag it, reply publicly; return the planner's verdicts on the echoes."""
    echoes: list[AuditRecord] = []
    # Zendesk events carry the whole ticket, as the Zendesk normaliser writes them.
    solved = Case(status=CaseStatus.SOLVED, priority=Priority.NORMAL)
    steps: list[tuple[EntityType, str, EntityData, list[str]]] = [
        (EntityType.CASE, "501", solved, ["status"]),
        (EntityType.CASE, "501", solved.model_copy(update={"tags": ["billing"]}), ["tags"]),
        (
            EntityType.MESSAGE,
            "zd-comment-9",
            Message(
                case_id="501",
                author=Actor(kind=ActorKind.AGENT, name="Zed"),
                body_text="Fixed the toner",
                public=True,
                created_at=round_.env.clock.now(),
            ),
            [],
        ),
    ]
    for entity_type, entity_id, data, changed in steps:
        _, commands = round_.plan([round_.zendesk(entity_type, entity_id, data, changed)])
        assert [c.target.platform for c in commands] == [Platform.INTERCOM]
        await round_.execute(commands)
        audits, again = round_.plan(await round_.env.events(settings))
        assert again == []  # nothing is ever copied back
        echoes += audits
    return echoes


async def test_the_planner_recognises_the_bot_admin(escalated: Round) -> None:
    echoes = await _zendesk_changes(escalated, None)
    assert echoes
    # every echo is ours by its actor; the conversation's first message, which every
    # notification repeats, has one event id (its message id) and is dropped as a duplicate
    assert set(_echo_decisions(echoes)) == {
        ("echo_suppressed", "layer 1"),
        ("duplicate_dropped", "event already handled (redelivery or replay)"),
    }
    conversation = await escalated.env.get(
        f"/conversations/{escalated.state and escalated.state['members']['intercom']}"
    )
    assert conversation["state"] == "closed"
    assert {t["name"] for t in conversation["tags"]["tags"]} == {"escalate", "billing"}


async def test_fingerprints_and_mirrors_suffice_without_the_bot(escalated: Round) -> None:
    blind = escalated.env.settings.model_copy(update={"service_account_id": None})
    echoes = await _zendesk_changes(escalated, blind)
    # Nothing was copied back (asserted per step). The status and tags echoes equal what the
    # planner already expects Intercom to hold (layer three: "unchanged"); the reply is
    # recognised by the mirror its created id named (layer two).
    suppressed = [a for a in echoes if a.decision == "echo_suppressed"]
    assert len(suppressed) == 1
    assert "is the mirror we wrote" in suppressed[0].reason
    assert any(a.decision == "unchanged" for a in echoes)
