"""A contact is never created on a first miss while its match may be on its way
(``streams.flows.holds``): the planner alone, time given as input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connectors.base.commands import (
    CONTACT_CREATED,
    CONTACT_MATCHED,
    CREATED_CONTACT,
    OPTION_UNHEARD,
    decode_list,
)
from connectors.base.fingerprints import fingerprint
from schemas.models import (
    ActorKind,
    CommandAction,
    Envelope,
    Platform,
    SyncCommand,
    Timer,
    WriteOutcome,
)
from streams.config import DEFAULT_HOLD_SECONDS, SyncConfig
from streams.flows.holds import HOLD
from streams.sync import Plan, SyncPlanner
from tests.streams.builders import BOT, SF, ZD, TableEntry, World

SF_ID, ZD_ID = "003-1", "u-1"


def rules(**hold: float) -> dict[str, Any]:
    """Zendesk ⇄ Salesforce, names both ways; ``hold`` per route target (``salesforce=30``)."""

    def route(source: str, target: str) -> dict[str, Any]:
        profile: dict[str, Any] = {"enabled": True}
        if target in hold:
            profile["hold_seconds"] = hold[target]
        return {"from": source, "to": target, "profile": profile}

    return {
        "connectors": {"zendesk": ZD, "salesforce": SF},
        "routes": [route("zendesk", "salesforce"), route("salesforce", "zendesk")],
        "profile_fields": {"name": "both", "phone": "both"},
    }


class Contact:
    """One contact link (by email), its table entry and the planner."""

    def __init__(self, world: World, **hold: float) -> None:
        self.world = world
        self.planner = SyncPlanner(SyncConfig.model_validate(rules(**hold)))
        self.table = TableEntry()

    @property
    def state(self) -> dict[str, Any] | None:
        """The link's table entry, as JSON."""
        return self.table.json

    def keep(self, plan: Plan) -> Plan:
        self.table.write(plan.state)
        return plan

    def send(self, event: Envelope) -> Plan:
        return self.keep(self.planner.on_event(self.table.read(), event, now=self.world.tick()))

    def zendesk(self, **fields: Any) -> Plan:
        fields.setdefault("changed", ["name"])
        return self.send(self.world.contact(Platform.ZENDESK, ZD, ZD_ID, **fields))

    def salesforce(self, **fields: Any) -> Plan:
        fields.setdefault("changed", ["name"])
        return self.send(self.world.contact(Platform.SALESFORCE, SF, SF_ID, **fields))

    def fire(self, timer: Timer, *, clock_behind: float = 0.0) -> Plan:
        """The timer back from ``deskstream.timers``; this worker's clock may lag the one
        that saw it due by ``clock_behind`` seconds."""
        self.world.clock = max(self.world.clock, timer.due_at)
        now = self.world.clock - timedelta(seconds=clock_behind)
        return self.keep(self.planner.on_timer(self.table.read(), timer, now=now))

    def answered(
        self,
        command: SyncCommand,
        *,
        made: str | None,
        outcome: WriteOutcome = WriteOutcome.WRITTEN,
    ) -> Plan:
        failed = outcome is WriteOutcome.FAILED
        result = self.world.result(
            command,
            None if failed else SF_ID,
            created={CREATED_CONTACT: made} if made else {},
            fingerprints=[fingerprint("salesforce", SF_ID, "name", "Maria")],
            outcome=outcome,
            error="INVALID_EMAIL_ADDRESS" if failed else None,
        )
        return self.keep(self.planner.on_write(self.table.read(), result, now=self.world.clock))

    @property
    def holds(self) -> dict[str, Any]:
        return dict((self.state or {}).get("holds", {}))


def decisions(*plans: Plan) -> list[str]:
    return [a.decision for p in plans for a in p.audits]


def reasons(*plans: Plan, decision: str) -> list[str]:
    return [a.reason for p in plans for a in p.audits if a.decision == decision]


def creates(*plans: Plan) -> list[SyncCommand]:
    return [c for p in plans for c in p.commands if c.action is CommandAction.UPSERT]


@pytest.fixture
def world() -> World:
    return World()


def test_a_first_miss_holds_the_create_and_sets_a_timer_for_its_end(world: World) -> None:
    link = Contact(world)
    first = link.zendesk(name="Maria")
    assert first.commands == []
    [timer] = first.timers
    assert (timer.purpose, timer.subject) == (HOLD, "salesforce")
    assert timer.due_at == world.clock + timedelta(seconds=DEFAULT_HOLD_SECONDS)
    [held] = reasons(first, decision="contact_held")
    assert held.startswith("held: waiting 180 s for a match by email")
    assert link.holds["salesforce"]["until"] == timer.due_at.timestamp()


def test_the_match_arriving_during_the_hold_links_and_nothing_is_created(world: World) -> None:
    link = Contact(world)
    first = link.zendesk(name="Maria")
    [timer] = first.timers
    world.tick(20)
    match = link.salesforce(name="Maria", phone="+1 555 0100", changed=["name", "phone"])
    [linked] = reasons(match, decision="contact_linked")
    assert linked.startswith(f"linked: Salesforce contact {SF_ID}")
    assert link.holds == {}
    assert (link.state or {})["members"] == {"zendesk": ZD_ID, "salesforce": SF_ID}
    # profile values now flow as updates of the linked records, never as creates
    assert creates(match) == []
    [phone] = match.commands
    assert (phone.action, phone.target.platform) == (CommandAction.UPDATE, Platform.ZENDESK)
    late = link.fire(timer)
    assert late.commands == []
    assert creates(late) == []


def test_without_a_match_the_create_goes_out_once_when_the_hold_ends(world: World) -> None:
    link = Contact(world)
    first = link.zendesk(name="Maria")
    [timer] = first.timers
    during = [link.zendesk(name="Maria", phone=f"+1 555 010{i}", changed=["phone"]) for i in (1, 2)]
    assert creates(*during) == []
    assert [t for p in during for t in p.timers] == []
    assert "contact_held" not in decisions(*during)  # one hold, noted once
    released = link.fire(timer)
    [create] = creates(released)
    assert create.target.platform is Platform.SALESFORCE
    assert create.data.phone == "+1 555 0102"  # type: ignore[union-attr]
    [reason] = [a.reason for a in released.audits if a.command_id == create.command_id]
    assert reason.startswith("hold over: no Salesforce contact with this email arrived in 180 s")
    assert link.fire(timer).commands == []  # a copy of the timer is dropped
    made = link.answered(create, made=CONTACT_CREATED)
    [created] = reasons(made, decision="contact_created")
    assert created.startswith(f"created: Salesforce contact {SF_ID}")
    assert link.holds == {}
    assert creates(made) == []


def test_a_contact_found_by_email_at_the_end_of_the_hold_is_linked(world: World) -> None:
    link = Contact(world)
    [timer] = link.zendesk(name="Maria").timers
    [create] = creates(link.fire(timer))
    found = link.answered(create, made=CONTACT_MATCHED)
    [linked] = reasons(found, decision="contact_linked")
    assert linked == f"linked: Salesforce contact {SF_ID} found by email at the end of the hold"
    assert "contact_created" not in decisions(found)


def test_a_timer_releases_the_hold_when_this_worker_clock_lags(world: World) -> None:
    link = Contact(world)
    [timer] = link.zendesk(name="Maria").timers
    assert len(creates(link.fire(timer, clock_behind=2.0))) == 1


def test_any_input_after_the_end_releases_the_hold_without_its_timer(world: World) -> None:
    link = Contact(world)
    link.zendesk(name="Maria")
    world.tick(int(DEFAULT_HOLD_SECONDS) + 1)
    assert len(creates(link.zendesk(name="Maria", phone="+1 555 0100", changed=["phone"]))) == 1


def test_an_older_timer_does_not_end_a_later_hold(world: World) -> None:
    link = Contact(world)
    [timer] = link.zendesk(name="Maria").timers
    [create] = creates(link.fire(timer))
    link.answered(create, made=None, outcome=WriteOutcome.FAILED)  # the hold is dropped...
    again = link.zendesk(name="Maria", phone="+1 555 0100", changed=["phone"])
    assert "contact_held" in decisions(again)  # ...and the next change holds anew
    assert link.fire(timer).commands == []  # a copy of the old timer: dropped
    stale = timer.model_copy(update={"timer_id": "other"})
    assert creates(link.fire(stale)) == []  # a different old one: before the new hold's end
    assert link.holds["salesforce"]


def test_our_own_record_reported_before_the_answer_links_too(world: World) -> None:
    """The Contact a case's create made for its requester (with the link id) comes back as
    our change event: the hold ends linked, as for a person's record."""
    link = Contact(world)
    link.zendesk(name="Maria")
    echo = link.salesforce(name="Maria", actor=BOT)
    assert BOT.kind is ActorKind.INTEGRATION
    assert "contact_linked" in decisions(echo)
    assert creates(echo) == []


def test_hold_seconds_is_per_route_and_zero_creates_at_once(world: World) -> None:
    link = Contact(world, salesforce=30, zendesk=0)
    [timer] = link.zendesk(name="Maria").timers
    assert timer.due_at == world.clock + timedelta(seconds=30)
    towards_zendesk = Contact(World(), salesforce=30, zendesk=0).salesforce(name="Maria")
    assert towards_zendesk.timers == []
    assert [c.target.platform for c in creates(towards_zendesk)] == [Platform.ZENDESK]


def test_a_timer_for_a_link_without_a_hold_decides_nothing(world: World) -> None:
    link = Contact(world)
    link.zendesk(name="Maria")
    link.salesforce(name="Maria")  # linked: the hold is gone
    timer = Timer(
        timer_id="t-1",
        link_id=world.link,
        purpose="something_else",
        due_at=world.clock,
        set_at=world.clock,
    )
    assert link.fire(timer).commands == []


def test_a_value_never_heard_from_the_target_goes_out_as_unheard(world: World) -> None:
    """Issue 11: Zendesk's ``user.created`` names no profile field; the name written to a
    contact that only ever reported its email says so (``unheard``), so a sink whose own
    create set that name may leave the write out. A value heard there never is unheard."""
    link = Contact(world)
    link.zendesk(name="Maria")
    world.tick(5)
    bare = link.salesforce(changed=[])  # linked, no name reported
    [write] = bare.commands
    assert (write.target.platform, write.changed_fields) == (Platform.SALESFORCE, ["name"])
    assert decode_list(write.options.get(OPTION_UNHEARD)) == ["name"]
    world.tick(5)
    renamed = link.zendesk(name="Maria L.")
    [again] = renamed.commands
    assert decode_list(again.options.get(OPTION_UNHEARD)) == ["name"]  # still never heard
    world.tick(5)
    link.salesforce(name="Maria L.")  # now heard: later writes are plain updates
    world.tick(5)
    [plain] = link.zendesk(name="Maria Lopez").commands
    assert plain.target.platform is Platform.SALESFORCE
    assert OPTION_UNHEARD not in plain.options
