"""The shipped Intercom → Zendesk ⇄ Salesforce example driven through the planner alone: a
link's state carried from step to step, write results answered by hand, and the escalation
that gives a conversation its ticket and its Case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from connectors.base.fingerprints import fingerprint
from schemas.models import (
    CommandAction,
    Envelope,
    Op,
    Platform,
    SyncCommand,
    WriteOutcome,
    WriteResult,
)
from streams.config import SyncConfig
from streams.sync import Plan, SyncPlanner
from tests.streams.builders import IC, SF, ZD, TableEntry, World

__all__ = ["EXAMPLE", "Link", "linked", "three_way_config", "to"]

EXAMPLE = Path(__file__).parents[2] / "config" / "intercom-zendesk-salesforce.example.yaml"


def three_way_config() -> SyncConfig:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    document["connectors"] = {"intercom": IC, "zendesk": ZD, "salesforce": SF}
    return SyncConfig.model_validate(document)


class Link:
    def __init__(self, world: World, config: SyncConfig | None = None) -> None:
        self.world = world
        self.planner = SyncPlanner(config or three_way_config())
        self.table = TableEntry()
        self.commands: list[SyncCommand] = []

    @property
    def state(self) -> dict[str, Any] | None:
        """The link's table entry, as JSON."""
        return self.table.json

    def send(self, event: Envelope) -> Plan:
        plan = self.planner.on_event(self.table.read(), event, now=self.world.tick())
        self.table.write(plan.state)
        self.commands += plan.commands
        return plan

    def written(
        self,
        command: SyncCommand,
        target_id: str | None,
        *,
        created: dict[str, str] | None = None,
        fields: dict[str, str] | None = None,
        skipped: list[str] | None = None,
    ) -> Plan:
        platform = command.target.platform.value
        record = target_id or command.target.entity_id or ""
        result = WriteResult(
            command_id=command.command_id,
            link_id=command.link_id,
            target=command.target,
            outcome=WriteOutcome.WRITTEN,
            target_entity_id=target_id,
            latency_ms=5.0,
            fingerprints=[fingerprint(platform, record, k, v) for k, v in (fields or {}).items()],
            written_at=self.world.tick(),
            created_ids=created or {},
            skipped_fields=skipped or [],
        )
        plan = self.planner.on_write(self.table.read(), result, now=self.world.clock)
        self.table.write(plan.state)
        self.commands += plan.commands
        return plan


def to(plan: Plan, platform: str) -> list[SyncCommand]:
    return [c for c in plan.commands if c.target.platform.value == platform]


def linked(world: World, config: SyncConfig | None = None) -> Link:
    """A conversation with two parts, escalated: the ticket t-7, then the Case 500-1."""
    link = Link(world, config)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    link.send(world.part("p-2", "Invoice attached"))
    [ticket] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    assert ticket.target.platform is Platform.ZENDESK
    assert ticket.action is CommandAction.UPSERT
    joined = link.written(
        ticket, "t-7", created={"thread:0": "c-1", "thread:1": "c-2"}, fields={"status": "open"}
    )
    [case] = joined.commands  # the ticket's own route creates the Case
    assert case.target.platform is Platform.SALESFORCE
    assert case.action is CommandAction.UPSERT
    assert [m.body_text for m in case.thread] == ["I was charged twice", "Invoice attached"]
    link.written(
        case, "500-1", created={"thread:0": "cc-1", "thread:1": "cc-2"}, fields={"status": "open"}
    )
    assert link.state is not None
    assert link.state["members"] == {"intercom": "conv-1", "zendesk": "t-7", "salesforce": "500-1"}
    return link
