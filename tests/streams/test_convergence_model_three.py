"""Randomized interleavings with three members (the shipped Intercom → Zendesk ⇄ Salesforce
example): people edit all three records at once, webhooks and change events arrive in any
order and twice, our writes land early or late and cross people's changes; after everyone
stops and every message is delivered, every member holds the winner of every field as the
routes spell it there, and nothing more is written.

The two-member model (``test_convergence_model``) with a third member: its people, its
network and its drain are reused; Zendesk and Intercom behave as there. A Salesforce Case
takes status and priority as they come (a plain PATCH, no compare-and-set), has no tags,
and Change Data Capture names the fields each commit changed, stamped to the millisecond.
The Case is made when the ticket's create answers (or its echo arrives first); people on
Salesforce act once it exists.

What is expected is computed here, not asked of the planner:

- status and tags: the last human change by source time at one-second resolution, ties by
  the example's precedence (Salesforce, Zendesk, Intercom), or a change made knowingly on a
  record our sync had written the winner to (as in the two-member model; what a create
  wrote counts as written by the sync);
- priority: Zendesk owns it (``conflicts.owners``): Zendesk's latest value, whoever else
  changed theirs; Intercom's cannot be written and is left out;
- each member's value is the winner's carried hop by hop through the routes' maps (Intercom
  and Salesforce reach each other only through Zendesk), compared by equality as the
  planner's ``agrees`` does: Zendesk pending reaches Intercom as open, and an open
  conversation then agrees;
- the routes' reopen rule: a member whose record is solved or closed keeps it when a route on
  the way in does not reopen (Zendesk → Intercom does not), and the winner's own record
  reopens only when every route into and out of it reopens (``reopen_allowed``).
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from connectors.base.commands import OPTION_EXPECT_PREFIX
from schemas.models import (
    Case,
    CaseStatus,
    CommandAction,
    Priority,
    SyncCommand,
)
from streams.config import SyncConfig
from streams.sync import SyncPlanner
from tests.streams.builders import IC, SF, ZD
from tests.streams.test_convergence_model import (
    BOT,
    CANONICAL,
    INTERCOM_STATUS,
    PERSON,
    PLATFORM,
    Edit,
    Interleavings,
    model_settings,
)
from tests.streams.three_way import EXAMPLE


def _config() -> SyncConfig:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    document["connectors"] = {"intercom": IC, "zendesk": ZD, "salesforce": SF}
    document["taxonomy"]["tags"] = {"billing": {"intercom": "billing-issue", "zendesk": "billing"}}
    return SyncConfig.model_validate(document)


CONFIG = _config()
TAGGED = ("intercom", "zendesk")  # a Case has no tags
#: what a record there can hold
HOLDS = {
    "intercom": {"open", "pending", "closed"},
    "zendesk": {status.value for status in CaseStatus},
    "salesforce": {"new", "open", "on_hold", "closed"},
}
#: what people set, and what a record there can hold
PRIORITIES = {
    "intercom": ["high", "normal"],
    "zendesk": ["low", "normal", "high", "urgent"],
    "salesforce": ["low", "normal", "high"],
}
CASE_STATUSES = ["new", "open", "on_hold", "closed"]
#: a person's pause before a change: often inside the same clock-tolerance slot
SAME_SECOND = st.one_of(st.just(0.0), st.floats(0, 0.9), st.floats(0, 2.5))
PRIORITY_OWNER = "zendesk"
#: may a status from the first platform reopen the second's solved record? Every route on
#: the way must reopen (Intercom and Salesforce reach each other through Zendesk); a record
#: reopening to its own winner needs every route into or out of it to reopen.
REOPENS = {
    ("intercom", "zendesk"): True,
    ("intercom", "salesforce"): True,
    ("zendesk", "salesforce"): True,
    ("salesforce", "zendesk"): True,
    ("zendesk", "intercom"): False,
    ("salesforce", "intercom"): False,
    ("intercom", "intercom"): False,
    ("zendesk", "zendesk"): False,
    ("salesforce", "salesforce"): True,
}
DONE = {"solved", "closed"}


def _hops(source: str, target: str) -> list[tuple[str, str]]:
    """The example's chains: every route touches Zendesk."""
    if "zendesk" in (source, target):
        return [(source, target)]
    return [(source, "zendesk"), ("zendesk", target)]


def _carry(key: str, value: str, source: str, target: str) -> str | None:
    """``value`` of ``key`` (status or priority) from ``source`` spelled for ``target``,
    through each hop's map; None when a hop has no entry or the target cannot hold it."""
    if source == target:
        return value
    carried: Any = CaseStatus(value) if key == "status" else Priority(value)
    for hop in _hops(source, target):
        route = CONFIG.route(*hop)
        assert route is not None, hop
        carried = getattr(route, key).map.get(carried)
        if carried is None:
            return None
    held = HOLDS[target] if key == "status" else PRIORITIES[target]
    return str(carried.value) if carried.value in held else None


class ThreeMembers(Interleavings):
    SIDES = ("intercom", "zendesk", "salesforce")

    def __init__(self) -> None:
        super().__init__()
        self.planner = SyncPlanner(CONFIG)
        self.case_made = False

    # -- the escalated conversation --------------------------------------------------------
    @initialize(settled=st.booleans())
    def escalate(self, settled: bool = False) -> None:
        """The conversation is escalated: the ticket is made and, once its answer is in (or
        its own echo is: either may come first), the Case. ``settled``: the ticket's answer
        arrives at once and the Case is made before anyone acts (otherwise people may act
        while the Case is still to come)."""
        create = self._escalate_conversation()
        # What the link held before anyone acted: the conversation's status and tag, and the
        # ticket's priority (Zendesk owns it) as the create sets it.
        self.edits += [
            Edit(self.now, "intercom", "status", "open"),
            Edit(self.now, "intercom", "billing", True),
            Edit(self.now, "zendesk", "priority", "normal"),
        ]
        self._advance(0.5)
        self._execute(create)
        if settled:
            self._feed(self.inbox.pop(0))  # the ticket's answer
            self._advance(0.5)
            self._execute(self.queues["salesforce"].popleft())  # the Case
        self.now = math.floor(self.now) + 1.25  # people start acting a second later

    # -- the platforms' reports ------------------------------------------------------------
    def _time(self, side: str) -> float:
        if side == "salesforce":  # CDC's commit timestamp: milliseconds
            return math.floor(self.now * 1000) / 1000
        return super()._time(side)

    # -- people (Intercom's and Zendesk's status and tags: the two-member rules) -------------
    @rule(
        side=st.sampled_from(["intercom", "zendesk"]),
        status=st.sampled_from(["open", "pending", "closed", "on_hold"]),
        pause=SAME_SECOND,
    )
    def person_sets_status(self, side: str, status: str, pause: float) -> None:
        """The two-member rule, more often within one second of the previous change, and
        with Zendesk's on hold (Intercom has none)."""
        if not (side == "intercom" and status == "on_hold"):
            super().person_sets_status(side, status, pause)

    @rule(
        side=st.sampled_from(["intercom", "zendesk", "salesforce"]),
        index=st.integers(0, 3),
        pause=SAME_SECOND,
    )
    def person_sets_priority(self, side: str, index: int, pause: float) -> None:
        record = self.records[side]
        priority = PRIORITIES[side][index % len(PRIORITIES[side])]
        if (side == "salesforce" and not self.case_made) or record.priority == priority:
            return  # no Case yet, or no change: no notification
        self._person_pause(side, pause)
        self._edit(Edit(self._time(side), side, "priority", priority), before=record.priority)
        record.priority = priority
        self._notify(side, PERSON[side], ["priority"])

    @rule(status=st.booleans(), index=st.integers(0, 3), pause=SAME_SECOND)
    def case_agent_acts(self, status: bool, index: int, pause: float) -> None:
        """The Case's agents, as often as the two others' together (the Case joins the link
        last: without this rule its changes would be rare in the scripts)."""
        record = self.records["salesforce"]
        if not status:
            self.person_sets_priority("salesforce", index, pause)
        elif self.case_made and record.status != CASE_STATUSES[index]:
            self._person_pause("salesforce", pause)
            edit = Edit(self._time("salesforce"), "salesforce", "status", CASE_STATUSES[index])
            self._edit(edit, before=record.status)
            record.status = edit.value
            self._notify("salesforce", PERSON["salesforce"], ["status"])

    # -- the sinks -------------------------------------------------------------------------
    @rule(side=st.sampled_from(["intercom", "zendesk", "salesforce"]), pause=st.floats(0, 1.5))
    def sink_executes(self, side: str, pause: float) -> None:
        super().sink_executes(side, pause)

    def _execute(self, command: SyncCommand) -> None:
        side = command.target.platform.value
        record = self.records[side]
        assert isinstance(command.data, Case)
        if command.action is CommandAction.UPSERT:
            assert side != "intercom", command
            assert side == "zendesk" or not self.case_made, "a second Case for the ticket"
            self.case_made = self.case_made or side == "salesforce"
            data = command.data
            record.status = data.status.value
            record.priority = (data.priority or Priority.NORMAL).value
            record.tags = set(data.tags) if side in TAGGED else set()
            # What the create wrote was written by the sync: a person who changes it saw it.
            record.synced = {"status": True, **{CANONICAL[t]: True for t in record.tags}}
            fields = ["status", "priority", *(["tags"] if side in TAGGED else [])]
            self.inbox.append(self._result(command, PLATFORM[side][2], fields))
            self._notify(side, BOT, fields)
            return
        written = [f for f in ("status", "priority") if self._write(command, f)]
        if written:
            self._notify(side, BOT, written)
        self._apply_tags(command, written)  # never any for the Case (the final check)
        self.inbox.append(self._result(command, PLATFORM[side][2], written))

    def _write(self, command: SyncCommand, key: str) -> bool:
        """Apply ``key`` of an update as the platform would; True when the record changed."""
        side = command.target.platform.value
        record = self.records[side]
        assert isinstance(command.data, Case)
        if key not in command.changed_fields:
            return False
        assert side != "intercom" or key != "priority", "Intercom's priority cannot be written"
        wanted = command.data.status if key == "status" else command.data.priority
        assert wanted is not None, command
        held = getattr(record, key)
        new = (
            INTERCOM_STATUS.get(wanted.value, wanted.value) if side == "intercom" else wanted.value
        )
        expect = command.options.get(f"{OPTION_EXPECT_PREFIX}{key}")
        if side == "zendesk" and expect is not None and held not in {*expect.split(","), new}:
            return False  # safe_update: a person changed it after the sync decided
        if new == held:
            return False
        setattr(record, key, new)
        record.synced[key] = True
        return True

    # -- after the people stop -------------------------------------------------------------
    def _spelled(self, edit: Edit, side: str) -> Any:
        if edit.key in ("status", "priority"):
            return _carry(edit.key, edit.value, edit.side, side)
        return edit.value

    def _winners(self, key: str) -> list[Edit | None]:
        edits = [e for e in self.edits if e.key == key]
        if key == "priority":  # the owner's latest, whoever else changed theirs
            return [max((e for e in edits if e.side == PRIORITY_OWNER), key=lambda e: e.at)]
        return super()._winners(key)

    def _holds(self, winner: Edit, side: str, value: Any) -> bool:
        """Does ``side``'s ``value`` agree with ``winner``, or keep a solved record the
        reopen rule keeps?"""
        wanted = self._spelled(winner, side)
        if wanted is None or value == wanted:
            return True
        refused = not REOPENS[(winner.side, side)]
        return winner.key == "status" and refused and value in DONE and wanted not in DONE

    def _check_converged(self) -> None:
        for key in ("status", "priority"):
            members = [s for s in self.SIDES if key == "status" or s != "intercom"]
            held = {side: getattr(self.records[side], key) for side in members}
            winners = self._winners(key)
            assert any(all(self._holds(w, s, held[s]) for s in members) for w in winners if w), (
                key,
                held,
                winners,
                self.edits,
            )
        for key in ("billing", "vip", "refund"):
            on = {
                side: any(CANONICAL.get(t) == key for t in self.records[side].tags)
                for side in TAGGED
            }
            edited = any(e.key == key for e in self.edits)
            wanted = {w.value for w in self._winners(key) if w} if edited else {False}
            assert on["intercom"] == on["zendesk"], (key, on, wanted)
            assert on["zendesk"] in wanted, (key, on, wanted)
        assert not self.records["salesforce"].tags
        for audit in self.audits:
            if audit.decision == "conflict_lost":
                assert audit.details["loser"] != audit.details["winner"], audit


ThreeMembers.TestCase.settings = model_settings(300, 30)
TestThreeMembers = ThreeMembers.TestCase
