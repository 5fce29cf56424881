"""The sync planner, driven event by event as the agent drives it, with no Kafka."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connectors.base.commands import (
    CREATED_MESSAGE,
    OPTION_GROUP_ID,
    OPTION_TAGS_ADDED,
    OPTION_TAGS_REMOVED,
    decode_list,
)
from connectors.base.fingerprints import fingerprint
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Envelope,
    Op,
    Platform,
    Priority,
    SyncCommand,
    Timer,
    WriteOutcome,
)
from streams.config import SyncConfig
from streams.converge import MAX_REASSERTS
from streams.sync import Plan, SyncPlanner
from tests.streams.builders import ADMIN, BOT, IC, ZD, TableEntry, World

BASE_CONFIG: dict[str, Any] = {
    "connectors": {"intercom": IC, "zendesk": ZD},
    "taxonomy": {"tags": {"billing": {"intercom": "billing-issue", "zendesk": "billing"}}},
    "routing": {"by_plan": {"premium": 3601}, "default_group_id": 3600},
    "custom_fields": {
        "plan": {"zendesk_field_id": 9001, "source": "contact.plan", "allowed": ["free", "premium"]}
    },
}


class Link:
    """One link's table entry and the planner, as the agent holds them."""

    def __init__(self, world: World, **config: Any) -> None:
        self.world = world
        self.planner = SyncPlanner(SyncConfig.model_validate({**BASE_CONFIG, **config}))
        self.table = TableEntry()

    @property
    def state(self) -> dict[str, Any] | None:
        """The link's table entry, as JSON."""
        return self.table.json

    def send(self, event: Envelope, profile: Contact | None = None) -> Plan:
        plan = self.planner.on_event(
            self.table.read(), event, now=self.world.tick(), profile=profile
        )
        self.table.write(plan.state)
        return plan

    def written(
        self,
        command: SyncCommand,
        target_id: str | None,
        *,
        created: dict[str, str] | None = None,
        fingerprints: list[str] | None = None,
        outcome: WriteOutcome = WriteOutcome.WRITTEN,
    ) -> Plan:
        result = self.world.result(
            command, target_id, created=created, fingerprints=fingerprints, outcome=outcome
        )
        plan = self.planner.on_write(self.table.read(), result, now=self.world.clock)
        self.table.write(plan.state)
        return plan

    def fire(self, timer: Timer) -> Plan:
        """The timer comes back when due (``app.agents.timers``)."""
        self.world.clock = max(self.world.clock, timer.due_at)
        plan = self.planner.on_timer(self.table.read(), timer, now=self.world.clock)
        self.table.write(plan.state)
        return plan

    def held_create(self, held: Plan) -> SyncCommand:
        """The contact create ``held`` put on hold, once its hold is over."""
        assert held.commands == []
        assert "contact_held" in decisions(held)
        [timer] = held.timers
        [create] = self.fire(timer).commands
        assert create.action is CommandAction.UPSERT
        return create


def decisions(plan: Plan) -> list[str]:
    return [a.decision for a in plan.audits]


@pytest.fixture
def world() -> World:
    return World()


def escalated(world: World, link: Link) -> SyncCommand:
    """Conversation with two customer parts, then tagged escalate; the ticket t-7 created."""
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    link.send(world.part("p-2", "Invoice attached"))
    [create] = link.send(
        world.conversation(tags=["escalate", "billing-issue"], changed=["tags"])
    ).commands
    world.ticket_tags = ["billing"]  # what the create wrote
    link.written(
        create,
        "t-7",
        created={"thread:0": "c-1", "thread:1": "c-2"},
        fingerprints=[fingerprint("zendesk", "t-7", "status", "open")],
    )
    return create


def test_a_conversation_without_a_rule_match_stays_in_intercom(world: World) -> None:
    link = Link(world)
    plans = [link.send(world.conversation(op=Op.CREATE)), link.send(world.part("p-1", "hi"))]
    assert [c for p in plans for c in p.commands] == []
    assert decisions(plans[0]) == ["not_escalated"]
    assert decisions(plans[1]) == ["kept"]


def test_escalation_creates_one_ticket_with_the_full_thread(world: World) -> None:
    link = Link(world)
    profile = Contact(
        emails=["maria@example.com", "m.lopez@work.example"], external_id="cus-1", plan="premium"
    )
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    link.send(
        world.part(
            "p-2", "note to self", author=Actor(kind=ActorKind.AGENT, id="a-1"), public=False
        )
    )
    plan = link.send(
        world.conversation(tags=["escalate", "billing-issue", "vip"], changed=["tags"]), profile
    )
    [create] = plan.commands
    assert create.action is CommandAction.UPSERT
    assert create.target.platform is Platform.ZENDESK
    assert create.target.entity_id is None
    assert create.idempotency_key == f"{world.link}:create:zendesk"
    assert [m.body_text for m in create.thread] == ["I was charged twice", "note to self"]
    assert [m.public for m in create.thread] == [True, False]  # admin notes stay internal
    assert create.contact == profile  # identity resolution gets every email and the external id
    assert isinstance(create.data, Case)
    assert create.data.tags == ["billing", "vip"]  # taxonomy applied, `escalate` not copied
    assert create.data.custom_fields == {"9001": "premium"}
    assert create.options[OPTION_GROUP_ID] == "3601"  # routed by plan
    assert "upsert_case_on_zendesk" in decisions(plan)


def _snapshot(event: Envelope) -> Envelope:
    return event.model_copy(update={"source": event.source.model_copy(update={"snapshot": True})})


def _escalate(world: World, link: Link, *, backfill: bool) -> SyncCommand:
    def read(event: Envelope) -> Envelope:
        return _snapshot(event) if backfill else event

    link.send(read(world.conversation(op=Op.CREATE)))
    link.send(read(world.part("p-1", "I was charged twice")))
    [create] = link.send(read(world.conversation(tags=["escalate"], changed=["tags"]))).commands
    return create


def test_commands_a_backfill_caused_say_so_and_live_ones_do_not(world: World) -> None:
    # The sinks run a backfill's commands only while no live one waits (app.agents.lanes).
    link = Link(world)
    create = _escalate(world, link, backfill=True)
    assert create.backfill
    link.written(create, "t-7", created={"thread:0": "c-1"})
    [reply] = link.send(world.part("p-2", "any news?")).commands  # live, on a backfilled link
    assert not reply.backfill
    # The same escalation read live is the same command (same id), only not marked.
    other = World()
    live = _escalate(other, Link(other), backfill=False)
    assert (live.command_id, live.backfill) == (create.command_id, False)


def test_a_second_trigger_or_a_redelivery_never_creates_a_second_ticket(world: World) -> None:
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "hello"))  # a conversation always opens with a message
    tagged = world.conversation(tags=["escalate"], changed=["tags"])
    assert len(link.send(tagged).commands) == 1
    assert decisions(link.send(tagged)) == ["duplicate_dropped"]
    again = link.send(world.conversation(tags=["escalate", "urgent"], changed=["tags"]))
    assert [c.action for c in again.commands] != [CommandAction.UPSERT]


def test_later_parts_are_appended_once(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    plan = link.send(world.part("p-3", "any news?"))
    [append] = plan.commands
    assert append.action is CommandAction.APPEND
    assert append.target.entity_id == "t-7"
    replayed = world.part("p-3", "any news?")  # same part, another event id (a replay)
    assert link.send(replayed).commands == []
    # the parts carried by the create were not appended again either
    assert link.send(world.part("p-1", "I was charged twice")).commands == []


def test_our_own_writes_are_never_copied_back(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    # layer 1: the ticket's webhook for our create, made by the integration user
    plan = link.send(world.ticket(actor=BOT, op=Op.CREATE))
    assert plan.commands == []
    assert decisions(plan) == ["echo_suppressed"]
    # layer 2: the comments we created come back as comment_added events by the customer
    plan = link.send(
        world.comment("c-1", "I was charged twice", author=Actor(kind=ActorKind.CUSTOMER))
    )
    assert plan.commands == []
    assert "echo_suppressed" in decisions(plan)


def test_agent_public_replies_go_to_intercom_and_internal_notes_stay(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    [reply] = link.send(world.comment("c-10", "Refund issued")).commands
    assert reply.target.platform is Platform.INTERCOM
    assert reply.target.entity_id == "conv-1"
    assert reply.action is CommandAction.APPEND
    assert link.send(world.comment("c-11", "check ledger", public=False)).commands == []
    customer = Actor(kind=ActorKind.CUSTOMER, email="maria@example.com")
    assert link.send(world.comment("c-12", "thanks", author=customer)).commands == []
    # our reply's own echo in Intercom (a part by the bot admin) is dropped
    link.written(reply, "conv-1", created={"message": "p-99"})
    echo = world.part(
        "p-99", "Refund issued", author=Actor(kind=ActorKind.AGENT, id="someone-else")
    )
    assert link.send(echo).commands == []


def test_status_round_trips_without_looping(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    [close] = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"])).commands
    assert close.target.platform is Platform.INTERCOM
    assert isinstance(close.data, Case)
    assert close.data.status is CaseStatus.CLOSED
    assert close.changed_fields == ["status"]
    link.written(
        close, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "closed")]
    )
    # Intercom reports the close we wrote (not flagged as ours): already known, nothing to do
    echo = world.conversation(status=CaseStatus.CLOSED, actor=Actor(kind=ActorKind.AGENT, id="x"))
    plan = link.send(echo)
    assert plan.commands == []
    assert decisions(plan) == ["unchanged"]


def test_a_late_echo_is_stale(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    [close] = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"])).commands
    written_at = world.tick()
    link.written(
        close, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "closed")]
    )
    # a human reopens the conversation: Zendesk is reopened (intercom_reopens_zendesk)
    [reopen] = link.send(world.conversation(status=CaseStatus.OPEN, changed=["status"])).commands
    assert reopen.target.platform is Platform.ZENDESK
    # then the webhook of our close arrives late, out of order, not flagged as ours
    late = world.conversation(
        status=CaseStatus.CLOSED, at=written_at, actor=Actor(kind=ActorKind.AGENT, id="x")
    )
    plan = link.send(late)
    assert plan.commands == []  # older than the reopen it precedes: never a new change
    assert "stale" in decisions(plan)


def test_an_echo_after_a_reordered_notification_is_no_change(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    before = world.tick()  # a reply notification, sent before our write, will arrive late
    world.tick(5)
    [close] = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"])).commands
    link.written(
        close, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "closed")]
    )
    link.send(world.conversation(status=CaseStatus.OPEN, at=before))  # reordered, older
    echo = world.conversation(status=CaseStatus.CLOSED, actor=Actor(kind=ActorKind.AGENT, id="x"))
    plan = link.send(echo)
    assert plan.commands == []
    assert decisions(plan) == ["unchanged"]  # the value our settled write left there


def test_convergence_writes_nothing_when_the_other_side_already_agrees(world: World) -> None:
    link = Link(world, flows={"status_round_trip": {"reopen": "never"}})
    escalated(world, link)
    link.send(world.conversation(status=CaseStatus.CLOSED, changed=["status"]))  # -> solved
    refused = link.send(world.conversation(status=CaseStatus.OPEN, changed=["status"]))
    assert "reopen_refused" in decisions(refused)
    # closed again in Intercom: Zendesk is still solved, so there is nothing to write
    plan = link.send(world.conversation(status=CaseStatus.CLOSED, changed=["status"]))
    assert plan.commands == []
    assert decisions(plan) == ["unchanged"]


@pytest.mark.parametrize(
    ("rule", "intercom_reopens", "zendesk_reopens"),
    [
        pytest.param("intercom_reopens_zendesk", True, False, id="intercom-only"),
        pytest.param("both", True, True, id="both"),
        pytest.param("never", False, False, id="never"),
    ],
)
def test_reopen_rule(
    world: World, rule: str, intercom_reopens: bool, zendesk_reopens: bool
) -> None:
    link = Link(world, flows={"status_round_trip": {"reopen": rule}})
    escalated(world, link)
    link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"]))
    reopened = link.send(world.conversation(status=CaseStatus.OPEN, changed=["status"]))
    assert bool(reopened.commands) is intercom_reopens
    link2 = Link(World(), flows={"status_round_trip": {"reopen": rule}})
    escalated(link2.world, link2)
    link2.send(link2.world.conversation(status=CaseStatus.CLOSED, changed=["status"]))
    back = link2.send(link2.world.ticket(status=CaseStatus.OPEN, changed=["status"]))
    assert bool(back.commands) is zendesk_reopens


def test_last_writer_wins_and_owned_fields(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    late = world.tick(60)
    link.send(world.ticket(status=CaseStatus.PENDING, changed=["status"], at=late))
    older = link.send(
        world.conversation(
            status=CaseStatus.CLOSED,
            changed=["status"],
            at=late - timedelta(seconds=30),  # happened before Zendesk's change, arrives after
        )
    )
    assert older.commands == []
    assert "conflict_lost" in decisions(older)
    owned = Link(World(), conflicts={"owners": {"status": "zendesk"}})
    escalated(owned.world, owned)
    plan = owned.send(owned.world.conversation(status=CaseStatus.CLOSED, changed=["status"]))
    assert plan.commands == []
    assert "not_owner" in decisions(plan)


def test_tags_map_both_ways_as_deltas(world: World) -> None:
    link = Link(world)
    escalated(world, link)
    [update] = link.send(
        world.conversation(tags=["escalate", "billing-issue", "refund"], changed=["tags"])
    ).commands
    assert decode_list(update.options[OPTION_TAGS_ADDED]) == ["refund"]
    [back] = link.send(world.ticket(tags=["billing", "refund", "vip"], changed=["tags"])).commands
    assert back.target.platform is Platform.INTERCOM
    assert decode_list(back.options[OPTION_TAGS_ADDED]) == ["vip"]


def test_new_zendesk_ticket_from_a_customer_is_acknowledged_once(world: World) -> None:
    from connectors.base.links import case_link_id

    link = Link(world)
    own = case_link_id("zendesk", ZD, "t-50")
    plan = link.send(world.ticket(ticket_id="t-50", link=own, op=Op.CREATE))
    [ack] = plan.commands
    assert ack.target.platform is Platform.INTERCOM
    assert ack.action is CommandAction.UPSERT
    assert ack.contact is not None
    assert ack.contact.emails == ["maria@example.com"]
    assert "t-50" in (ack.data.body_text or "")  # type: ignore[union-attr]
    link.written(ack, "conv-new")
    assert link.send(world.ticket(ticket_id="t-50", link=own, op=Op.CREATE)).commands == []
    # acknowledged, not linked: agents' replies on this ticket do not go to Intercom
    later = link.send(world.comment("c-1", "hello"))
    assert later.commands == []


def test_profile_fields_flow_per_direction(world: World) -> None:
    link = Link(world)
    plan = link.send(
        world.contact(
            Platform.INTERCOM, IC, "c-1", name="Maria", plan="premium", changed=["name", "plan"]
        )
    )
    upsert = link.held_create(plan)
    assert upsert.target.platform is Platform.ZENDESK
    assert upsert.action is CommandAction.UPSERT
    assert sorted(upsert.changed_fields) == ["name", "plan"]
    link.written(upsert, "u-1", fingerprints=[fingerprint("zendesk", "u-1", "plan", "premium")])
    # plan flows only from Intercom, its owner: a Zendesk-side plan edit is set back; a
    # Zendesk-side name change (name flows both ways) reaches Intercom
    plan = link.send(
        world.contact(
            Platform.ZENDESK, ZD, "u-1", name="Maria López", plan="free", changed=["name", "plan"]
        )
    )
    by_platform = {c.target.platform: c for c in plan.commands}
    update, back = by_platform[Platform.INTERCOM], by_platform[Platform.ZENDESK]
    assert update.changed_fields == ["name"]
    assert isinstance(update.data, Contact)
    assert update.data.name == "Maria López"
    assert back.changed_fields == ["plan"]
    assert isinstance(back.data, Contact)
    assert back.data.plan == "premium"
    assert "not_owner" in decisions(plan)


def test_events_of_other_connectors_are_out_of_scope(world: World) -> None:
    link = Link(world, connectors={"intercom": "other", "zendesk": ZD})
    plan = link.send(world.conversation(tags=["escalate"]))
    assert plan.commands == []
    assert decisions(plan) == ["out_of_scope"]


def test_failed_create_can_be_retried_by_a_later_event(world: World) -> None:
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "hello"))  # a conversation always opens with a message
    [create] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    link.written(create, None, outcome=WriteOutcome.FAILED)
    [again] = link.send(world.conversation(tags=["escalate", "x"], changed=["tags"])).commands
    assert again.action is CommandAction.UPSERT
    assert again.idempotency_key == create.idempotency_key  # the same create, never a second one
    # The failed create may have landed (its answer lost): the sink must look before creating
    # again, while a first create may skip that lookup (issue 11).
    assert (create.attempt, again.attempt) == (1, 2)


def test_the_failed_create_mark_ends_when_a_create_answers(world: World) -> None:
    """Until a create answers the record may exist; after, the link has it."""
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "hello"))
    [create] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    link.written(create, None, outcome=WriteOutcome.FAILED)
    [again] = link.send(world.conversation(tags=["escalate", "x"], changed=["tags"])).commands
    assert link.state is not None
    assert "create:failed:zendesk" in link.state["mirrors"]
    link.written(again, "ticket-1")
    assert "create:failed:zendesk" not in link.state["mirrors"]


def test_priority_maps_through_the_config(world: World) -> None:
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "hello"))  # a conversation always opens with a message
    [create] = link.send(
        world.conversation(tags=["escalate"], priority=Priority.HIGH, changed=["tags"])
    ).commands
    assert isinstance(create.data, Case)
    assert create.data.priority is Priority.HIGH
    assert create.target.entity_type is EntityType.CASE


def test_the_thread_is_told_in_time_order_whatever_the_arrival_order(world: World) -> None:
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    first = world.part("p-1", "written first")
    second = world.part("p-2", "written second")
    link.send(second)  # webhooks arrive in any order
    link.send(first)
    [create] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    assert [m.body_text for m in create.thread] == ["written first", "written second"]
    link.written(create, "t-7", created={"thread:0": "c-1", "thread:1": "c-2"})
    # each mirror points at the comment made from it
    assert link.state is not None
    assert link.state["mirrors"]["intercom:p-1"] == "zendesk:c-1"
    assert link.state["mirrors"]["intercom:p-2"] == "zendesk:c-2"


def test_an_acknowledgement_waits_for_the_requesters_email(world: World) -> None:
    from connectors.base.links import case_link_id

    link = Link(world)
    own = case_link_id("zendesk", ZD, "t-60")
    anonymous = world.ticket(ticket_id="t-60", link=own, op=Op.CREATE)
    assert isinstance(anonymous.data, Case)
    requester = Actor(kind=ActorKind.CUSTOMER, id="u-77")  # Zendesk names requesters by id
    event = anonymous.model_copy(
        update={"data": anonymous.data.model_copy(update={"requester": requester})}
    )
    waiting = link.send(event)
    assert waiting.commands == []
    assert decisions(waiting) == ["ack_waiting"]
    assert waiting.retry_in is not None  # decided again once the profile had time to arrive
    comment = world.comment("c-1", "more details", author=requester)
    profile = Contact(emails=["liam@example.com"], name="Liam")
    [ack] = link.send(comment.model_copy(update={"link_id": own}), profile).commands
    assert ack.target.platform is Platform.INTERCOM
    assert ack.contact == profile
    later = world.comment("c-2", "still there?", author=requester)
    assert link.send(later.model_copy(update={"link_id": own}), profile).commands == []  # once


@pytest.mark.parametrize(
    ("precedence", "winner"),
    [(["zendesk", "intercom"], "zendesk"), (["intercom", "zendesk"], "intercom")],
)
@pytest.mark.parametrize("zendesk_first", [True, False], ids=["zendesk-first", "intercom-first"])
def test_changes_in_the_same_second_are_decided_by_precedence_whatever_the_arrival_order(
    world: World, precedence: list[str], winner: str, zendesk_first: bool
) -> None:
    link = Link(world, conflicts={"precedence": precedence})
    escalated(world, link)
    second = world.tick(10)
    # Zendesk stamps sub-seconds, Intercom whole seconds: 0.6 s apart, the same slot.
    solved = world.ticket(status=CaseStatus.SOLVED, changed=["status"], at=second)
    snoozed = world.conversation(
        status=CaseStatus.PENDING, changed=["status"], at=second + timedelta(seconds=0.6)
    )
    plans = [link.send(e) for e in ((solved, snoozed) if zendesk_first else (snoozed, solved))]
    registers = link.state["registers"]  # type: ignore[index]
    assert registers["status"]["w"][1] == winner
    lost = [a for p in plans for a in p.audits if a.decision == "conflict_lost"]
    assert len(lost) == 1  # the loser is audited once, with both values
    assert lost[0].details["winner"].startswith(winner)
    loser = "intercom" if winner == "zendesk" else "zendesk"
    assert lost[0].details["loser"].startswith(loser)
    # the last write to the loser's record carries the winner's value
    writes = [c for p in plans for c in p.commands if c.target.platform.value == loser]
    expected = CaseStatus.CLOSED if winner == "zendesk" else CaseStatus.PENDING
    assert writes[-1].data.status is expected  # type: ignore[union-attr]


def test_a_change_a_slot_later_wins_whatever_the_precedence(world: World) -> None:
    link = Link(world)  # zendesk first in precedence
    escalated(world, link)
    solved_at = world.tick(10)
    link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"], at=solved_at))
    reopened = link.send(
        world.conversation(
            status=CaseStatus.OPEN, changed=["status"], at=solved_at + timedelta(seconds=1.5)
        )
    )
    [reopen] = reopened.commands
    assert reopen.target.platform is Platform.ZENDESK
    assert reopen.data.status is CaseStatus.OPEN  # type: ignore[union-attr]


def test_an_escalation_waits_for_its_first_message(world: World) -> None:
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    early = link.send(world.conversation(tags=["escalate"], changed=["tags"]))  # tag came first
    assert early.commands == []
    assert decisions(early) == ["escalation_waiting"]
    assert early.retry_in is not None
    link.send(world.part("p-1", "the first message, delivered late"))
    [create] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    assert [m.body_text for m in create.thread] == ["the first message, delivered late"]


# -- the three ways people on both platforms broke convergence (issue: "Both sides always
# converge"), decided here without Kafka; tests/e2e/test_concurrent_edits.py runs them live.


def _status_writes(plan: Plan, platform: Platform) -> list[CaseStatus]:
    return [
        c.data.status
        for c in plan.commands
        if c.target.platform is platform
        and "status" in c.changed_fields
        and isinstance(c.data, Case)
    ]


def test_crossed_status_writes_end_with_the_winner_on_both_sides(world: World) -> None:
    """A Zendesk agent solves while an Intercom admin snoozes, in the same second; the
    snooze is decided first, so our write of pending to Zendesk lands after the solve."""
    link = Link(world)  # precedence: zendesk first
    escalated(world, link)
    second = world.tick(10)
    snoozed = link.send(
        world.conversation(
            status=CaseStatus.PENDING, changed=["status"], at=second + timedelta(seconds=0.2)
        )
    )
    [to_pending] = snoozed.commands
    assert _status_writes(snoozed, Platform.ZENDESK) == [CaseStatus.PENDING]
    assert to_pending.options["expect.status"] == "open"  # compare-and-set on Zendesk
    solved = link.send(
        world.ticket(status=CaseStatus.SOLVED, changed=["status"], at=second + timedelta(0, 0.6))
    )
    assert _status_writes(solved, Platform.INTERCOM) == [CaseStatus.CLOSED]
    assert [a.details["loser"] for a in solved.audits if a.decision == "conflict_lost"] == [
        "intercom:pending"
    ]
    # Our pending write is on its way and will land after the solve: the winner follows it
    # (commands to one record run in order), expecting the value ours leaves there.
    [follow] = [c for c in solved.commands if c.target.platform is Platform.ZENDESK]
    assert _status_writes(solved, Platform.ZENDESK) == [CaseStatus.SOLVED]
    assert follow.options["expect.status"] == "pending,solved"  # ours lands, or is refused
    # Both land; the echoes and results say so, and nothing more is written: no ping-pong.
    link.written(
        to_pending, "t-7", fingerprints=[fingerprint("zendesk", "t-7", "status", "pending")]
    )
    [close] = [c for c in solved.commands if c.target.platform is Platform.INTERCOM]
    quiet = [
        link.send(world.ticket(status=CaseStatus.PENDING, changed=["status"], actor=BOT)),
        link.written(
            follow, "t-7", fingerprints=[fingerprint("zendesk", "t-7", "status", "solved")]
        ),
        link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"], actor=BOT)),
        link.written(
            close, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "closed")]
        ),
        link.send(world.conversation(status=CaseStatus.CLOSED, changed=["status"], actor=BOT)),
    ]
    assert [c for p in quiet for c in p.commands] == []


def test_a_crossed_write_seen_only_in_its_echo_is_written_back_once(world: World) -> None:
    """An agent solves, then reopens; both reach Intercom in order. The reopen's echo is
    lost, and the echo of our close arrives last: Intercom seems closed while the winner is
    open, so the winner is written back, once."""
    link = Link(world, flows={"status_round_trip": {"reopen": "both"}})
    escalated(world, link)
    [close] = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"])).commands
    reopened = link.send(world.ticket(status=CaseStatus.OPEN, changed=["status"]))
    # the reopen follows the close in Intercom's command stream
    assert _status_writes(reopened, Platform.INTERCOM) == [CaseStatus.OPEN]
    [reopen] = reopened.commands
    link.written(
        close, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "closed")]
    )
    link.written(
        reopen, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "open")]
    )
    # The reopen's echo never comes (a lost webhook); the close's echo arrives late.
    late = link.send(world.conversation(status=CaseStatus.CLOSED, changed=["status"], actor=BOT))
    [again] = late.commands
    assert _status_writes(late, Platform.INTERCOM) == [CaseStatus.OPEN]
    assert "re-asserts the winner" in late.audits[-1].reason
    link.written(
        again, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "open")]
    )
    echo = link.send(world.conversation(status=CaseStatus.OPEN, changed=["status"], actor=BOT))
    assert echo.commands == []


def test_concurrent_tag_edits_keep_every_persons_tags(world: World) -> None:
    link = Link(world)
    escalated(world, link)  # Intercom: escalate, billing-issue; Zendesk: billing
    second = world.tick(5)
    at = second + timedelta(seconds=0.3)
    # Intercom: two tags added in one second, their notifications delivered newest first;
    # `escalate` removed (Intercom sends nothing for that; later copies show it).
    vip = world.conversation(
        tags=["billing-issue", "refund", "vip"], changed=["tags", "tags.vip"], at=second
    )
    refund = world.conversation(
        tags=["billing-issue", "escalate", "refund"], changed=["tags", "tags.refund"], at=second
    )
    # Zendesk: an agent adds `urgent` with additional_tags; the ticket's copy is older.
    urgent = world.ticket(tags=["billing", "urgent"], changed=["tags", "tags.urgent"], at=at)
    plans = [link.send(vip), link.send(urgent), link.send(refund)]
    commands = [c for p in plans for c in p.commands]
    added: dict[str, set[str]] = {"zendesk": set(), "intercom": set()}
    for command in commands:
        assert OPTION_TAGS_REMOVED not in command.options, command.options  # nobody removed one
        added[command.target.platform.value] |= set(
            decode_list(command.options.get(OPTION_TAGS_ADDED))
        )
    assert added == {"zendesk": {"refund", "vip"}, "intercom": {"urgent"}}
    assert "escalate" not in added["zendesk"]


def test_a_reply_is_not_taken_for_a_reopen(world: World) -> None:
    """An agent solves the ticket while an Intercom admin replies: the reply notification
    carries the conversation as it was (open), but it is not a status change."""
    link = Link(world)
    escalated(world, link)
    solved = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"]))
    [close] = solved.commands
    reply_copy = world.conversation(status=CaseStatus.OPEN, actor=ADMIN)  # changed: []
    assert _status_writes(link.send(reply_copy), Platform.ZENDESK) == []
    link.written(
        close, "conv-1", fingerprints=[fingerprint("intercom", "conv-1", "status", "closed")]
    )
    echo = link.send(world.conversation(status=CaseStatus.CLOSED, changed=["status"], actor=BOT))
    assert echo.commands == []
    trail = [a.reason for p in (solved, echo) for a in p.audits]
    assert not any("intercom" in r and "changed status" in r for r in trail)


@pytest.mark.parametrize("zendesk_first", [True, False], ids=["zendesk-first", "intercom-first"])
def test_concurrent_profile_edits_converge_on_the_winner(world: World, zendesk_first: bool) -> None:
    link = Link(world)
    first = link.send(world.contact(Platform.INTERCOM, IC, "c-1", name="Maria", changed=["name"]))
    upsert = link.held_create(first)
    link.written(upsert, "u-1", fingerprints=[fingerprint("zendesk", "u-1", "name", "Maria")])
    link.send(world.contact(Platform.INTERCOM, IC, "c-1", name="Maria"))  # learns c-1 is hers
    second = world.tick(10)
    # both renamed in the same second: precedence (Zendesk first) decides, whatever the order
    on_zendesk = world.contact(
        Platform.ZENDESK, ZD, "u-1", name="María López", changed=["name"], at=second
    )
    on_intercom = world.contact(
        Platform.INTERCOM, IC, "c-1", name="Maria L.", at=second + timedelta(seconds=0.5)
    )
    plans = [
        link.send(e)
        for e in ((on_zendesk, on_intercom) if zendesk_first else (on_intercom, on_zendesk))
    ]
    last = {c.target.platform: c.data for p in plans for c in p.commands}
    assert isinstance(last[Platform.INTERCOM], Contact)
    assert last[Platform.INTERCOM].name == "María López"  # type: ignore[union-attr]
    lost = [a for p in plans for a in p.audits if a.decision == "conflict_lost"]
    assert [a.details["loser"] for a in lost] == ["intercom:Maria L."]


def test_a_value_the_record_does_not_keep_is_written_a_bounded_number_of_times(
    world: World,
) -> None:
    """Something on Intercom reopens every conversation we close (an automation reporting as
    the system): the winner is written a few times, then the sync stops and says so."""
    link = Link(world)
    escalated(world, link)
    attempts = list(link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"])).commands)
    stalled: list[str] = []
    for _ in range(6):
        closed = [fingerprint("intercom", "conv-1", "status", "closed")]
        link.written(attempts[-1], "conv-1", fingerprints=closed)
        reverted = link.send(
            world.conversation(status=CaseStatus.OPEN, actor=Actor(kind=ActorKind.SYSTEM))
        )
        attempts += reverted.commands
        stalled += [d for d in decisions(reverted) if d == "convergence_stalled"]
    assert len(attempts) == MAX_REASSERTS
    assert {a.data.status for a in attempts} == {CaseStatus.CLOSED}  # type: ignore[union-attr]
    assert stalled == ["convergence_stalled"]  # said once


def test_a_replay_older_than_the_dedupe_window_cannot_roll_a_field_back(world: World) -> None:
    # Webhook freshness (docs/architecture.md): signature windows are wide, so a captured
    # delivery replayed late is stopped by its event id, and past the dedupe window by the
    # source-time clock: the older value never replaces the newer one.
    link = Link(world)
    escalated(world, link)
    solved_at = world.tick(10)
    solved = world.ticket(status=CaseStatus.SOLVED, changed=["status"], at=solved_at)
    assert _status_writes(link.send(solved), Platform.INTERCOM) == [CaseStatus.CLOSED]
    reopened = world.conversation(
        status=CaseStatus.OPEN, changed=["status"], at=solved_at + timedelta(seconds=5)
    )
    assert _status_writes(link.send(reopened), Platform.ZENDESK) == [CaseStatus.OPEN]
    assert decisions(link.send(solved)) == ["duplicate_dropped"]  # inside the window
    world.tick(link.planner.config.dedupe_window_seconds + 3600)
    replayed = link.send(solved)
    assert "duplicate_dropped" not in decisions(replayed)  # the id is forgotten by now
    assert _status_writes(replayed, Platform.INTERCOM) == []
    assert _status_writes(replayed, Platform.ZENDESK) == []


def test_a_comment_made_private_is_never_copied_and_a_copied_one_is_reported(
    world: World,
) -> None:
    link = Link(world)
    escalated(world, link)
    # Made private before anything crossed: its public version, arriving late, stays in Zendesk.
    added = world.comment("c-20", "card ends 4242")
    made_private = world.comment("c-20", "card ends 4242", public=False).model_copy(
        update={"op": Op.UPDATE}
    )
    assert link.send(made_private).commands == []
    late = link.send(added)
    assert late.commands == []
    assert decisions(late) == ["kept_internal"]
    # Made private after its copy reached Intercom: nothing to write, and the audit says why.
    [reply] = link.send(world.comment("c-21", "Refund issued")).commands
    link.written(reply, None, created={CREATED_MESSAGE: "part-9"})
    hidden = world.comment("c-21", "Refund issued", public=False).model_copy(
        update={"op": Op.UPDATE}
    )
    plan = link.send(hidden)
    assert plan.commands == []
    assert decisions(plan) == ["privacy_not_mirrored"]
    assert "intercom:part-9" in plan.audits[0].reason
