"""Randomized interleavings against the pure planner: people edit both platforms at once,
webhooks arrive in any order and twice, our writes land early or late and cross people's
changes; after everyone stops and every message is delivered, both records hold the winner
of every field, and nothing more is written.

The platforms are small models of what the sandboxes (and the real APIs) do with our
commands: Zendesk applies tag deltas and refuses, per field, a status write whose expected
value is no longer there (``safe_update``); Intercom snoozes for pending (the sink's
``snooze_pending_s`` is configured) and sends no notification when a tag is removed (so
people's Intercom tag removals are left out of the scripts: nothing would ever tell the sync
about them). The expected winner of each
field is computed here independently: the last human change by source time at one-second
resolution, ties by platform precedence (Zendesk first), Intercom's times in whole seconds.

``test_convergence_model_three`` runs the same model with Salesforce as a third member
(``SIDES``, ``_spelled`` and the record hooks are what it overrides).
"""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from connectors.base.commands import OPTION_EXPECT_PREFIX, decode_list
from connectors.base.fingerprints import fingerprint
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    EntityType,
    Envelope,
    Op,
    Platform,
    Priority,
    SyncCommand,
    WriteOutcome,
    WriteResult,
)
from streams.config import SyncConfig
from streams.sync import SyncPlanner
from tests.streams.builders import IC, SF, ZD, TableEntry, World

CONFIG = SyncConfig.model_validate(
    {
        "connectors": {"intercom": IC, "zendesk": ZD},
        "taxonomy": {"tags": {"billing": {"intercom": "billing-issue", "zendesk": "billing"}}},
        "flows": {"status_round_trip": {"reopen": "both"}},
    }
)
TAGS = {"intercom": ["billing-issue", "vip", "refund"], "zendesk": ["billing", "vip", "refund"]}
CANONICAL = {"billing-issue": "billing", "billing": "billing", "vip": "vip", "refund": "refund"}
#: ties in a slot: the higher wins (the three-member model's Salesforce comes first)
PRECEDENCE = {"salesforce": 2, "zendesk": 1, "intercom": 0}
PERSON = {
    "intercom": Actor(kind=ActorKind.AGENT, id="a-1"),
    "zendesk": Actor(kind=ActorKind.AGENT, id="u-9"),
    "salesforce": Actor(kind=ActorKind.AGENT, id="005-1"),
}
BOT = Actor(kind=ActorKind.INTEGRATION, id="bot")
#: each platform's record of the link, and how its reports are addressed
PLATFORM = {
    "intercom": (Platform.INTERCOM, IC, "conv-1"),
    "zendesk": (Platform.ZENDESK, ZD, "t-7"),
    "salesforce": (Platform.SALESFORCE, SF, "500-1"),
}
#: what Intercom does with a status it has no state for (the sink's snooze for pending)
INTERCOM_STATUS = {"solved": "closed", "new": "open", "on_hold": "pending"}
#: a drain that needs more steps than this is a write loop
MAX_DRAIN = 400


def _status_map(source: str, target: str) -> dict[CaseStatus, CaseStatus]:
    route = CONFIG.route(source, target)
    assert route is not None
    return route.status.map


def _to_intercom(status: str) -> str:
    mapped = _status_map("zendesk", "intercom").get(CaseStatus(status))
    assert mapped is not None
    return mapped.value


def _to_zendesk(status: str) -> str | None:
    mapped = _status_map("intercom", "zendesk").get(CaseStatus(status))
    return mapped.value if mapped else None


def _project(edit: Edit, side: str) -> Any:
    """The edit's value as ``side`` holds it."""
    if edit.key != "status" or edit.side == side:
        return edit.value
    return _to_intercom(edit.value) if side == "intercom" else _to_zendesk(edit.value)


def _statuses(winner: Edit | None, untouched: str) -> tuple[str, str]:
    """(Zendesk, Intercom) statuses when ``winner`` wins (no edit: Zendesk's as it was)."""
    if winner is None or winner.side == "zendesk":
        zendesk = winner.value if winner else untouched
        return zendesk, _to_intercom(zendesk)
    return str(_to_zendesk(winner.value)), winner.value


@dataclass
class Record:
    status: str = "open"
    priority: str = "normal"
    tags: set[str] = field(default_factory=set)
    #: field (``status`` or a canonical tag) → its value was last written by the sync
    synced: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Edit:
    at: float
    side: str
    key: str  # "status" or a canonical tag
    value: Any

    def rank(self) -> tuple[int, int, float]:
        return (math.floor(self.at), PRECEDENCE[self.side], self.at)


class Interleavings(RuleBasedStateMachine):
    #: the linked records' platforms, in the order the drain runs their sinks
    SIDES: tuple[str, ...] = ("zendesk", "intercom")

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.planner = SyncPlanner(CONFIG)
        self.table = TableEntry()
        self.records = {side: Record() for side in self.SIDES}
        self.inbox: list[Envelope | WriteResult] = []
        self.delivered: list[Envelope] = []
        self.queues: dict[str, deque[SyncCommand]] = {side: deque() for side in self.SIDES}
        self.edits: list[Edit] = []
        self.informed: dict[str, Edit] = {}
        self.audits: list[Any] = []
        self.now = self.world.clock.timestamp()
        self.parts = 100

    # -- plumbing ---------------------------------------------------------------------------
    def _person_pause(self, side: str, pause: float) -> None:
        """People act one after another: on Intercom, whose clock has whole seconds, a
        person's next change is stamped a later second (two changes of one field in the same
        Intercom second cannot be ordered by anyone: a documented limit)."""
        self._advance(max(pause, 0.001))  # Zendesk stamps sub-seconds: never the same time
        if side == "intercom":
            last = max((e.at for e in self.edits if e.side == side), default=-1.0)
            if math.floor(self.now) <= last:
                self.now = last + 1 + (self.now % 1)

    def _time(self, side: str) -> float:
        return math.floor(self.now) if side == "intercom" else self.now

    def _notify(self, side: str, actor: Actor, changed: list[str]) -> None:
        record = self.records[side]
        at = self.world.clock + timedelta(seconds=self._time(side) - self.world.clock.timestamp())
        data = Case(
            subject="Charged twice",
            status=CaseStatus(record.status),
            tags=sorted(record.tags),
            priority=Priority(record.priority),
        )
        platform, connector, entity = PLATFORM[side]
        event = self.world._envelope(
            platform, connector, EntityType.CASE, entity, data, actor=actor, changed=changed, at=at
        )
        if side == "intercom":  # its version: the newest part id (status changes are parts)
            self.parts += "status" in changed
            source = event.source.model_copy(update={"source_version": str(self.parts)})
            event = event.model_copy(update={"source": source})
        self.inbox.append(event)

    def _feed(self, item: Envelope | WriteResult) -> None:
        now = self.world.clock + timedelta(seconds=self.now - self.world.clock.timestamp() + 0.001)
        if isinstance(item, Envelope):
            plan = self.planner.on_event(self.table.read(), item, now=now)
            self.delivered.append(item)
        else:
            plan = self.planner.on_write(self.table.read(), item, now=now)
        self.table.write(plan.state)
        self.audits += plan.audits
        for command in plan.commands:
            self.queues[command.target.platform.value].append(command)

    def _advance(self, seconds: float) -> None:
        self.now += seconds

    # -- the escalated conversation --------------------------------------------------------
    @initialize()
    def escalate(self) -> None:
        create = self._escalate_conversation()
        assert isinstance(create.data, Case)
        self._advance(0.5)
        zd = self.records["zendesk"]
        zd.status, zd.tags = create.data.status.value, set(create.data.tags)
        self.inbox.append(self._result(create, "t-7", ["status", "tags"]))
        self._notify("zendesk", BOT, ["status", "tags"])
        self.now = math.floor(self.now) + 1.25  # people start acting a second later

    def _escalate_conversation(self) -> SyncCommand:
        """A conversation with its first message is tagged escalate: the ticket's create,
        taken off its queue."""
        world = self.world
        self.records["intercom"].tags = {"escalate", "billing-issue"}
        for event in (
            world.conversation(op=Op.CREATE),
            world.part("p-1", "I was charged twice"),
            world.conversation(
                tags=["escalate", "billing-issue"], changed=["tags", "tags.escalate"]
            ),
        ):
            self.now = max(self.now, event.source.occurred_at.timestamp())
            self._feed(event)
        [create] = self.queues["zendesk"]
        self.queues["zendesk"].clear()
        return create

    def _result(self, command: SyncCommand, target: str, fields: list[str]) -> WriteResult:
        side = command.target.platform.value
        record = self.records[side]
        values = {"status": record.status, "priority": record.priority, "tags": sorted(record.tags)}
        return WriteResult(
            command_id=command.command_id,
            link_id=command.link_id,
            target=command.target,
            outcome=WriteOutcome.WRITTEN if fields else WriteOutcome.UNCHANGED,
            target_entity_id=target,
            latency_ms=1.0,
            fingerprints=[fingerprint(side, target, f, values[f]) for f in fields],
            # Intercom's answer names the newest part (our status change is one)
            created_ids={"version": str(self.parts)} if side == "intercom" else {},
            written_at=self.world.clock
            + timedelta(seconds=self.now - self.world.clock.timestamp()),
        )

    # -- people ----------------------------------------------------------------------------
    @rule(
        side=st.sampled_from(["intercom", "zendesk"]),
        status=st.sampled_from(["open", "pending", "closed"]),
        pause=st.floats(0, 2.5),
    )
    def person_sets_status(self, side: str, status: str, pause: float) -> None:
        if side == "zendesk" and status == "closed":
            status = "solved"
        record = self.records[side]
        if record.status == status:
            return  # no change, no notification
        self._person_pause(side, pause)
        self._edit(Edit(self._time(side), side, "status", status), before=record.status)
        record.status = status
        self._notify(side, PERSON[side], ["status"])

    @rule(pause=st.floats(0, 2.5))
    def customer_replies_on_intercom(self, pause: float) -> None:
        """A contact's reply reopens a closed or snoozed conversation; its notification names
        the status (the conversation is open), whatever it was before."""
        self._person_pause("intercom", pause)
        edit = Edit(self._time("intercom"), "intercom", "status", "open")
        self._edit(edit, before=self.records["intercom"].status)
        self.records["intercom"].status = "open"
        self._notify("intercom", PERSON["intercom"], ["status"])

    @rule(
        side=st.sampled_from(["intercom", "zendesk"]),
        index=st.integers(0, 2),
        add=st.booleans(),
        pause=st.floats(0, 2.5),
    )
    def person_tags(self, side: str, index: int, add: bool, pause: float) -> None:
        name = TAGS[side][index]
        record = self.records[side]
        if side == "intercom" and not add:
            return  # Intercom sends nothing for a removed tag (see the module docstring)
        if (name in record.tags) == add:
            return
        self._person_pause(side, pause)
        self._edit(Edit(self._time(side), side, CANONICAL[name], add), before=not add)
        (record.tags.add if add else record.tags.discard)(name)
        self._notify(side, PERSON[side], ["tags", f"tags.{name}"])

    # -- the network and the sinks ---------------------------------------------------------
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        if not self.inbox:
            return
        index = data.draw(st.integers(0, len(self.inbox) - 1))
        item = self.inbox[index]
        if not data.draw(st.booleans()):  # delivered, or delivered and kept for a redelivery
            del self.inbox[index]
        self._feed(item)

    @rule(side=st.sampled_from(["intercom", "zendesk"]), pause=st.floats(0, 1.5))
    def sink_executes(self, side: str, pause: float) -> None:
        if self.queues[side]:
            self._advance(pause)
            self._execute(self.queues[side].popleft())

    def _execute(self, command: SyncCommand) -> None:
        side = command.target.platform.value
        record = self.records[side]
        assert isinstance(command.data, Case)
        written: list[str] = []
        if "status" in command.changed_fields:
            wanted = command.data.status.value
            if side == "intercom":
                new = INTERCOM_STATUS.get(wanted, wanted)
            else:
                new = wanted
                expect = command.options.get(f"{OPTION_EXPECT_PREFIX}status")
                if expect is not None and record.status not in {*expect.split(","), wanted}:
                    new = None  # safe_update: a person changed it after the sync decided
            if new is not None and new != record.status:
                record.status = new
                record.synced["status"] = True
                written.append("status")
                self._notify(side, BOT, ["status"])
        self._apply_tags(command, written)
        target = "conv-1" if side == "intercom" else "t-7"
        self.inbox.append(self._result(command, target, written))

    def _apply_tags(self, command: SyncCommand, written: list[str]) -> None:
        """The command's tag deltas, as the platform applies them."""
        side = command.target.platform.value
        record = self.records[side]
        added = set(decode_list(command.options.get("tags_added"))) - record.tags
        removed = set(decode_list(command.options.get("tags_removed"))) & record.tags
        if added or removed:
            record.tags |= added
            record.tags -= removed
            for tag in added | removed:
                record.synced[CANONICAL[tag]] = True
            written.append("tags")
            names = [f"tags.{t}" for t in sorted(added if side == "intercom" else added | removed)]
            if names:  # Intercom says nothing of a removal
                self._notify(side, BOT, ["tags", *names])

    # -- after the people stop -------------------------------------------------------------
    def teardown(self) -> None:
        steps = 0
        while self.inbox or any(self.queues.values()):
            steps += 1
            assert steps < MAX_DRAIN, "the sync kept writing after the people stopped (a loop)"
            for side in self.SIDES:
                if self.queues[side]:
                    self._advance(0.2)
                    self._execute(self.queues[side].popleft())
            if self.inbox:
                self._feed(self.inbox.pop(0))
        self._check_converged()
        # Quiet: nothing writes once the records agree. Platforms redeliver (same ids: the
        # dedupe drops them) and unrelated notifications (a reply, a note) re-send whole
        # records, old and new: each earlier copy once more, and each record as it is now.
        for event in list(self.delivered):
            self._feed(event)
            copy = {"event_id": event.event_id + "~copy", "changed_fields": []}
            self._feed(event.model_copy(update=copy))
        self._advance(1.5)
        for side in self.SIDES:
            self._notify(side, PERSON[side], [])
            self._feed(self.inbox.pop())
        queued = [c for q in self.queues.values() for c in q]
        assert not queued, (
            "a redelivered notification caused a write",
            [
                (c.target.platform.value, c.changed_fields, c.options, c.caused_by_event_id)
                for c in queued
            ],
            [(a.event_id, a.decision, a.reason) for a in self.audits[-12:]],
        )

    def _edit(self, edit: Edit, *, before: Any) -> None:
        """Record a person's change, and the winner if it counts as informed: a person whose
        record showed the winning value, written there by the sync, changed it knowingly."""
        self.edits.append(edit)
        current = self.informed.get(edit.key)
        synced = self.records[edit.side].synced.pop(edit.key, False)
        if (
            current is None
            or current.side == edit.side
            or edit.rank() > current.rank()
            or (synced and before == self._spelled(current, edit.side))
        ):
            self.informed[edit.key] = edit

    def _spelled(self, edit: Edit, side: str) -> Any:
        """The edit's value as ``side`` holds it."""
        return _project(edit, side)

    def _winners(self, key: str) -> list[Edit | None]:
        """The winner by the clock rule alone, and counting informed changes as later: the
        sync picks one of the two, depending on whether it knew, when the change arrived,
        that the person's record already showed the winner."""
        edits = [e for e in self.edits if e.key == key]
        by_clock = max(edits, key=Edit.rank) if edits else None
        return [by_clock, self.informed.get(key)]

    def _check_converged(self) -> None:
        ic, zd = self.records["intercom"], self.records["zendesk"]
        statuses = (zd.status, ic.status)
        acceptable = {_statuses(w, zd.status) for w in self._winners("status")}
        assert statuses in acceptable, (statuses, acceptable, self.edits)
        for key in ("billing", "vip", "refund"):
            on = {
                side: any(CANONICAL.get(t) == key for t in r.tags)
                for side, r in self.records.items()
            }
            # billing came with the escalation
            wanted = {w.value if w else key == "billing" for w in self._winners(key)}
            assert on["intercom"] == on["zendesk"], (key, on, wanted)
            assert on["zendesk"] in wanted, (key, on, wanted)
        for audit in self.audits:
            if audit.decision == "conflict_lost":
                assert audit.details["loser"] != audit.details["winner"], audit

    @invariant()
    def every_loss_is_explained(self) -> None:
        for audit in self.audits:
            if audit.decision == "conflict_lost":
                assert {"field", "loser", "winner"} <= set(audit.details), audit


def model_settings(examples: int, steps: int) -> settings:
    """CI runs the same ``examples`` scripts every time (a red run is reproducible); `make
    soak` (``DESKSTREAM_MODEL_EXAMPLES``) explores that many fresh ones and prints a blob to
    replay any failure."""
    soak = os.environ.get("DESKSTREAM_MODEL_EXAMPLES")
    return settings(
        max_examples=int(soak or examples),
        derandomize=soak is None,
        stateful_step_count=steps,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


Interleavings.TestCase.settings = model_settings(300, 25)
TestInterleavings = Interleavings.TestCase
