"""AI hand-offs through the real normaliser and the sync planner, with no Kafka."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.rehearsal_handoff import handoff_body, handoff_link
from connectors.ai_agent.normalize import AiAgentNormaliser
from connectors.base.commands import OPTION_GROUP_ID
from connectors.base.links import case_link_id
from connectors.base.settings import ConnectorSettings
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    EntityType,
    Envelope,
    Handoff,
    Message,
    Op,
    Platform,
    RawDelivery,
    Source,
    Timer,
)
from streams.config import SyncConfig
from streams.flows.handoff import rehomed
from streams.sync import Plan, SyncPlanner
from tests.streams.builders import IC, SF, T0, ZD, TableEntry, World

RULES: dict[str, Any] = {
    "connectors": {"zendesk": ZD, "salesforce": SF},
    "routes": [{"from": "zendesk", "to": "salesforce"}],
    "handoff": {
        "flows": {
            "zendesk": {"reason_field": "360005", "groups_by_segment": {"enterprise": 71}},
            "salesforce": {},
        }
    },
}


def handoff(conversation: str = "conv-9", **changes: Any) -> Envelope:
    body = handoff_body(conversation, "ana@example.org", **changes)
    delivery = RawDelivery(
        delivery_id=f"handoff:{conversation}",
        connector_id="widget",
        platform=Platform.AI_AGENT,
        received_at=T0,
        headers={},
        body=json.dumps(body).encode(),
        signature_verified=True,
    )
    settings = ConnectorSettings(platform="ai_agent")
    [event] = AiAgentNormaliser(connector_id="widget", settings=settings).normalise(delivery)
    return event


class Link:
    def __init__(self, world: World, **rules: Any) -> None:
        self.world = world
        self.planner = SyncPlanner(SyncConfig.model_validate({**RULES, **rules}))
        self.table = TableEntry()  # the state goes through the table's encoding, as in the agent

    def send(self, event: Envelope) -> Plan:
        plan = self.planner.on_event(self.table.read(), event, now=self.world.tick())
        self.table.write(plan.state)
        return plan


def decisions(plan: Plan) -> list[str]:
    return [a.decision for a in plan.audits]


@pytest.fixture
def world() -> World:
    return World()


def test_a_handoff_creates_one_ticket_with_the_context_as_an_internal_note(world: World) -> None:
    link = Link(world)
    plan = link.send(handoff(target="zendesk_ticket"))
    [create] = plan.commands
    assert (create.target.platform, create.action) == (Platform.ZENDESK, CommandAction.UPSERT)
    assert create.target.connector_id == ZD
    case = create.data
    assert isinstance(case, Case)
    assert case.custom_fields == {"360005": "customer asked for a human"}
    assert create.options[OPTION_GROUP_ID] == "71"  # the enterprise segment's group
    assert create.contact is not None
    assert create.contact.emails == ["ana@example.org"]  # resolved by email by the sink
    [note] = create.thread
    assert note.public is False
    assert note.author.kind is ActorKind.AI
    assert note.body_text is not None
    for said in ("customer asked for a human", "Charged twice", "order: A-1001", "charged twice"):
        assert said in note.body_text
    assert decisions(plan)[0] == "requested"
    requested = plan.audits[0].details
    assert requested["transcript_lines"] == "2"
    assert requested["collected_fields"] == "order"
    assert "A-1001" not in json.dumps(requested)  # audits name the data, never hold it

    # Redelivered: dropped; the ticket answered; a later copy finds the ticket there.
    assert link.send(handoff(target="zendesk_ticket")).commands == []
    result = world.result(create, "t-41", created={"thread:0": "c-1"})
    link.table.write(link.planner.on_write(link.table.read(), result, now=world.tick()).state)
    again = handoff(target="zendesk_ticket").model_copy(update={"event_id": "resent-later"})
    plan = link.send(again)
    assert plan.commands == []
    assert "already_handed_off" in decisions(plan)


def test_the_target_and_the_rules_choose_the_flow(world: World) -> None:
    [case] = Link(world).send(handoff("c-1", target="salesforce_case")).commands
    assert case.target.platform is Platform.SALESFORCE
    assert isinstance(case.data, Case)
    assert case.data.custom_fields == {"ai_handoff_reason": "customer asked for a human"}
    assert OPTION_GROUP_ID not in case.options

    default = Link(world).send(handoff("c-2")).commands  # no target: the rules' default
    assert [c.target.platform for c in default] == [Platform.ZENDESK]

    off = Link(world, handoff={"flows": {"zendesk": {"enabled": False}}})
    plan = off.send(handoff("c-3", target="zendesk_ticket"))
    assert plan.commands == []
    assert "flow_off" in decisions(plan)

    chat = Link(world).send(handoff("c-4", target="live_chat"))
    assert chat.commands == []
    assert "left_to_live_chat" in decisions(chat)


def test_a_handoff_in_intercom_is_a_note_then_the_segments_team(world: World) -> None:
    link = Link(
        world,
        connectors={"intercom": IC, "zendesk": ZD},
        routes=[{"from": "intercom", "to": "zendesk"}],
        handoff={"flows": {"intercom": {"groups_by_segment": {"enterprise": 5017691}}}},
    )
    note, assign = link.send(handoff(target="intercom_conversation")).commands
    assert (note.target.platform, note.action) == (Platform.INTERCOM, CommandAction.APPEND)
    assert note.target.entity_id == "conv-9"  # the conversation Fin escalated
    assert isinstance(note.data, Message)
    assert note.data.public is False
    assert (assign.action, assign.changed_fields) == (CommandAction.UPDATE, ["group"])
    assert assign.options[OPTION_GROUP_ID] == "5017691"
    again = handoff(target="intercom_conversation").model_copy(update={"event_id": "later"})
    assert link.send(again).commands == []


def test_a_handoff_in_place_lives_in_its_records_own_link() -> None:
    rules = SyncConfig.model_validate(
        {
            "connectors": {"intercom": IC, "zendesk": ZD},
            "routes": [{"from": "intercom", "to": "zendesk"}],
            "handoff": {"flows": {"intercom": {}, "zendesk": {}}},
        }
    )
    in_place = handoff(target="intercom_conversation")
    # Where the conversation's own events land: its assignment and snooze reach the hand-off.
    assert rehomed(in_place, rules).link_id == case_link_id("intercom", IC, "conv-9")
    created = handoff(target="zendesk_ticket")  # the ticket joins the conversation's link
    assert rehomed(created, rules).link_id == created.link_id == handoff_link("conv-9")


def test_a_flow_for_a_platform_without_a_connector_is_refused() -> None:
    with pytest.raises(ValueError, match=r"handoff\.flows"):
        SyncConfig.model_validate({**RULES, "handoff": {"flows": {"intercom": {}}}})


def ticket_event(
    world: World, link: str, n: int, status: CaseStatus, owner: str | None
) -> Envelope:
    """A person changes the hand-off's ticket (as the Zendesk normaliser reports it)."""
    at = world.tick()
    return Envelope(
        event_id=f"zd-{n}",
        source=Source(
            platform=Platform.ZENDESK,
            connector_id=ZD,
            entity_type=EntityType.CASE,
            entity_id="t-41",
            event_type="zen:event-type:ticket.status_changed",
            actor=Actor(kind=ActorKind.AGENT, id="u-9"),
            occurred_at=at,
        ),
        op=Op.UPDATE,
        changed_fields=["status", "assignee"],
        data=Case(
            status=status,
            assignee=Actor(kind=ActorKind.AGENT, id=owner, email=f"{owner}@acme.test")
            if owner
            else None,
        ),
        link_id=link,
        ingested_at=at,
    )


def handed_off(world: World) -> tuple[Link, str]:
    """A hand-off whose ticket t-41 was created, with a 600 s pending follow-up."""
    follow_up = {"reason_field": "360005", "follow_up_seconds": 600}
    link = Link(world, handoff={"flows": {"zendesk": follow_up}})
    event = handoff(target="zendesk_ticket")
    [create] = link.send(event).commands
    result = world.result(create, "t-41", created={"thread:0": "c-1"})
    link.table.write(link.planner.on_write(link.table.read(), result, now=world.tick()).state)
    assert event.link_id is not None
    return link, event.link_id


def fire(link: Link, timer: Timer) -> Plan:
    plan = link.planner.on_timer(link.table.read(), timer, now=timer.due_at)
    link.table.write(plan.state)
    return plan


def test_a_pending_ticket_nobody_took_over_is_followed_up_once(world: World) -> None:
    link, link_id = handed_off(world)
    pending = link.send(ticket_event(world, link_id, 1, CaseStatus.PENDING, None))
    [timer] = pending.timers
    assert timer.purpose == "handoff_follow_up"
    assert "follow_up_scheduled" in decisions(pending)
    [follow_up] = fire(link, timer).commands
    assert follow_up.target.platform is Platform.AI_AGENT
    assert follow_up.target.connector_id == "widget"
    assert follow_up.action is CommandAction.HANDOFF
    assert isinstance(follow_up.data, Handoff)
    assert follow_up.data.case_id == "conv-9"
    assert follow_up.data.metadata["record"] == "t-41"
    copy = timer.model_copy(update={"timer_id": timer.timer_id})
    assert fire(link, copy).commands == []  # a redelivered timer: dropped
    again = link.send(ticket_event(world, link_id, 2, CaseStatus.PENDING, None))
    assert again.timers == []  # followed up once, never twice


def test_a_human_taking_over_cancels_the_follow_up(world: World) -> None:
    link, link_id = handed_off(world)
    [timer] = link.send(ticket_event(world, link_id, 1, CaseStatus.PENDING, None)).timers
    taken = link.send(ticket_event(world, link_id, 2, CaseStatus.PENDING, "sam"))
    assert "follow_up_cancelled" in decisions(taken)
    plan = fire(link, timer)
    assert plan.commands == []
    assert decisions(plan) == ["follow_up_dropped"]


def test_a_ticket_leaving_pending_cancels_the_follow_up(world: World) -> None:
    link, link_id = handed_off(world)
    [timer] = link.send(ticket_event(world, link_id, 1, CaseStatus.PENDING, None)).timers
    link.send(ticket_event(world, link_id, 2, CaseStatus.OPEN, None))
    assert fire(link, timer).commands == []
