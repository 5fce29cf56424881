"""Three members per link (the shipped Intercom → Zendesk ⇄ Salesforce example): the
planner, driven event by event and write result by write result, with no Kafka.

An escalated conversation becomes one ticket and, once the ticket exists, one Case; a
message on any member reaches the two others as the routes allow; a status change anywhere
reaches both others through the maps, hop by hop; the copies' own events write nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.base.commands import CREATED_MESSAGE
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Priority,
)
from tests.streams.builders import ADMIN, BOT, ZD, World
from tests.streams.three_way import Link
from tests.streams.three_way import linked as _linked
from tests.streams.three_way import to as _to


@pytest.fixture
def world() -> World:
    return World()


def test_an_escalation_makes_one_ticket_and_one_case(world: World) -> None:
    link = _linked(world)
    creates = [c for c in link.commands if c.action is CommandAction.UPSERT]
    assert sorted(c.target.platform.value for c in creates) == ["salesforce", "zendesk"]
    # The copies of the history are known as mirrors on both: their events are echoes.
    for echo in (world.comment("c-1", "I was charged twice"), _sf_comment(world, "cc-2")):
        assert link.send(echo).commands == []


def _sf_comment(world: World, comment_id: str, *, public: bool = True) -> Envelope:
    return world.case_comment(comment_id, "copy", public=public, actor=BOT)


def test_a_message_on_any_member_reaches_the_other_two_once(world: World) -> None:
    link = _linked(world)
    customer = link.send(world.part("p-3", "Any news?"))
    assert sorted(c.target.platform.value for c in customer.commands) == ["salesforce", "zendesk"]
    reply = link.send(world.comment("c-9", "Refund issued"))  # a Zendesk agent, public
    assert sorted(c.target.platform.value for c in reply.commands) == ["intercom", "salesforce"]
    crm = link.send(world.case_comment("cc-9", "Credit note sent"))  # a Salesforce agent
    # Salesforce → Zendesk directly; Zendesk → Intercom carries an agent's public message.
    assert sorted(c.target.platform.value for c in crm.commands) == ["intercom", "zendesk"]
    # Redelivered, or arriving again from another poll: nothing more.
    assert link.send(world.case_comment("cc-9", "Credit note sent")).commands == []
    appends = [c for c in link.commands if c.action is CommandAction.APPEND]
    assert len(appends) == 6


def test_an_internal_note_stays_off_the_customer_facing_member(world: World) -> None:
    link = _linked(world)
    note = link.send(world.case_comment("cc-5", "Customer is on a payment plan", public=False))
    [copy] = note.commands
    assert copy.target.platform is Platform.ZENDESK  # as an internal note
    assert isinstance(copy.data, Message)
    assert not copy.data.public
    zendesk_note = link.send(world.comment("c-5", "Check the ledger", public=False))
    [crm_copy] = zendesk_note.commands
    assert crm_copy.target.platform is Platform.SALESFORCE  # an unpublished CaseComment


def test_the_copies_of_a_message_are_echoes_everywhere(world: World) -> None:
    link = _linked(world)
    plan = link.send(world.part("p-3", "Any news?"))
    for command, created in zip(plan.commands, ("c-30", "cc-30"), strict=True):
        link.written(command, None, created={CREATED_MESSAGE: created})
    assert link.send(world.comment("c-30", "Any news?", actor=BOT)).commands == []
    assert link.send(_sf_comment(world, "cc-30")).commands == []


def test_a_status_change_on_the_case_reaches_both_others_and_stops(world: World) -> None:
    link = _linked(world)
    closed = link.send(world.case(status=CaseStatus.CLOSED, changed=["status"]))
    [to_zendesk] = _to(closed, "zendesk")
    [to_intercom] = _to(closed, "intercom")
    assert to_zendesk.data.status is CaseStatus.SOLVED  # type: ignore[union-attr]
    assert to_intercom.data.status is CaseStatus.CLOSED  # type: ignore[union-attr]
    # The writes land and their echoes come back: nothing more is written (no loop).
    link.written(to_zendesk, None, fields={"status": "solved"})
    link.written(to_intercom, None, fields={"status": "closed"})
    before = len(link.commands)
    link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"], actor=BOT))
    link.send(world.conversation(status=CaseStatus.CLOSED, changed=["status"], actor=BOT))
    link.send(world.case(status=CaseStatus.CLOSED, changed=["status"]))  # redelivered view
    assert link.commands[before:] == []


def test_a_reopened_conversation_reopens_the_ticket_and_the_case(world: World) -> None:
    link = _linked(world)
    solved = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"]))
    assert sorted(c.target.platform.value for c in solved.commands) == ["intercom", "salesforce"]
    for command in solved.commands:
        value = command.data.status.value  # type: ignore[union-attr]
        link.written(command, None, fields={"status": value})
    reopened = link.send(
        world.conversation(
            status=CaseStatus.OPEN, changed=["status"], actor=Actor(kind=ActorKind.CUSTOMER)
        )
    )
    targets = {c.target.platform.value: c.data.status for c in reopened.commands}  # type: ignore[union-attr]
    assert targets == {"zendesk": CaseStatus.OPEN, "salesforce": CaseStatus.OPEN}


def test_a_ticket_born_in_zendesk_gets_a_case_but_no_conversation(world: World) -> None:
    link = Link(world)
    born = world.ticket(op=Op.CREATE, link=None, ticket_id="t-40")
    born = born.model_copy(update={"link_id": _zendesk_link("t-40")})
    waiting = link.send(born)
    assert waiting.commands == []
    assert waiting.retry_in
    first = world.comment("c-41", "My invoice is wrong", author=ADMIN)
    first = first.model_copy(update={"link_id": born.link_id})
    link.send(first)
    retried = link.send(born.model_copy(update={"event_id": f"{born.event_id}~retry1"}))
    creates = [c for c in retried.commands if c.action is CommandAction.UPSERT]
    assert [c.target.platform.value for c in creates] == ["salesforce"]
    assert all(c.target.entity_type is EntityType.CASE for c in retried.commands)


def _zendesk_link(ticket_id: str) -> str:
    from connectors.base.links import case_link_id

    return case_link_id("zendesk", ZD, ticket_id)


# -- found by the three-member convergence model (test_convergence_model_three) -----------------
def test_the_ticket_reported_before_its_create_answers_still_gets_its_case(world: World) -> None:
    """Zendesk's webhook for the ticket we made may overtake the sink's answer: the ticket
    then joins the link from its own echo, and its route still creates the Case, once."""
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    [ticket] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    echo = link.send(world.ticket(op=Op.CREATE, actor=BOT, changed=["status"]))
    [case] = echo.commands
    assert case.target.platform is Platform.SALESFORCE
    assert case.action is CommandAction.UPSERT
    answered = link.written(ticket, "t-7", fields={"status": "open"})
    assert answered.commands == []  # one Case, not a second


def test_a_priority_changed_off_its_owner_is_set_back_to_the_owners(world: World) -> None:
    """The example's Zendesk owns priority. Nobody changed it on the ticket, so the ticket's
    priority as our create made it is the owner's value: a Case agent's change is set back to
    it (it used to stay, the three records disagreeing for good)."""
    link = _linked(world)
    owners = link.send(world.ticket(op=Op.CREATE, actor=BOT, changed=["status", "priority"]))
    for command in owners.commands:  # the Case's answer did not say it took a priority
        assert command.target.platform is Platform.SALESFORCE
        link.written(command, None, fields={"priority": "normal"})
    plan = link.send(world.case(priority=Priority.HIGH, changed=["priority"]))
    [back] = plan.commands
    assert back.target.platform is Platform.SALESFORCE
    assert back.changed_fields == ["priority"]
    assert isinstance(back.data, Case)
    assert back.data.priority is Priority.NORMAL
    assert "not_owner" in [a.decision for a in plan.audits]
    # Intercom's priority cannot be written: its change is not copied, nothing is written.
    assert (
        link.send(world.conversation(priority=Priority.HIGH, changed=["priority"])).commands == []
    )


def test_an_older_report_of_the_winners_own_record_never_wins(world: World) -> None:
    """A Zendesk agent sets on hold, then open, in the same second, while our create (which
    wrote open) has not answered yet; the later change arrives first and wins. A copy of the
    ticket (the agent's priority change) shows the agent's open: it used to be taken for the
    echo of our create, so the create's answer then stood for what the ticket held, as of
    the answer's earlier time, and the on-hold report delivered last passed for a newer
    change made knowingly on a record we had written; on hold won and went to the Case. It
    is older than the winner on the same ticket: nothing."""
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    [ticket] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    second = world.clock + timedelta(seconds=10)
    on_hold = world.ticket(status=CaseStatus.ON_HOLD, changed=["status"], at=second)
    reopened = second + timedelta(seconds=0.3)
    link.send(world.ticket(changed=["status"], at=reopened))  # it wins; the Case is made
    # Another change on the ticket (its webhook copies the status): still the open we write.
    link.send(world.ticket(changed=["priority"], at=reopened + timedelta(seconds=2)))
    link.written(ticket, "t-7", fields={"status": "open"})
    late = link.send(on_hold)
    assert late.commands == []
    assert "stale" in [a.decision for a in late.audits]
    assert link.state is not None
    assert link.state["registers"]["status"]["w"][1:] == ["zendesk", "open"]


def test_a_persons_copy_of_a_value_we_are_writing_is_not_our_echo(world: World) -> None:
    """A Zendesk agent solved the ticket; later a Case agent closes the Case while our write
    of the conversation's reopening is still on its way to the ticket, so we write solved
    there too. A copy of the ticket (the agent's priority change) shows solved: the agent's
    own value, not our write landing. The agent then reopens, in the same second as the
    Case's close: not a change made knowingly on a record we had written, so the Case (first
    in the example's precedence) wins the second; it used to be taken for one, and the
    reopening went to the Case."""
    link = _linked(world)
    base = world.clock.replace(microsecond=0) + timedelta(seconds=10)
    solved = link.send(world.ticket(status=CaseStatus.SOLVED, changed=["status"], at=base))
    for command in solved.commands:
        link.written(command, None, fields={"status": command.data.status.value})  # type: ignore[union-attr]
    customer = Actor(kind=ActorKind.CUSTOMER)
    reply = base + timedelta(seconds=2)
    link.send(world.conversation(changed=["status"], actor=customer, at=reply))
    later = base + timedelta(seconds=3)
    closed = link.send(
        world.case(
            status=CaseStatus.CLOSED, changed=["status"], at=later + timedelta(seconds=0.063)
        )
    )
    assert [c.data.status for c in _to(closed, "zendesk")] == [CaseStatus.SOLVED]  # type: ignore[union-attr]
    at = later + timedelta(seconds=0.065)
    link.send(world.ticket(status=CaseStatus.SOLVED, changed=["priority"], at=at))
    at += timedelta(seconds=0.002)
    reopened = link.send(world.ticket(status=CaseStatus.OPEN, changed=["status"], at=at))
    assert "conflict_lost" in [a.decision for a in reopened.audits]
    assert _to(reopened, "salesforce") == []
    assert link.state is not None
    assert link.state["registers"]["status"]["w"][1:] == ["salesforce", "closed"]
