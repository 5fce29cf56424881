"""AI hand-offs through the real normaliser and the sync planner, with no Kafka."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.ai_agent.normalize import AiAgentNormaliser
from connectors.base.commands import OPTION_GROUP_ID
from connectors.base.settings import ConnectorSettings
from schemas.models import (
    ActorKind,
    Case,
    CommandAction,
    Envelope,
    Platform,
    RawDelivery,
)
from streams.config import SyncConfig
from streams.sync import Plan, SyncPlanner
from tests.streams.builders import SF, T0, ZD, World

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
    body = {
        "conversation_id": conversation,
        "customer": {"email": "ana@example.org", "name": "Ana"},
        "reason": "customer asked for a human",
        "intent": "refund",
        "summary": "Charged twice for order A-1001.",
        "collected_fields": {"order": "A-1001"},
        "transcript": [
            {"role": "customer", "text": "I was charged twice", "at": "2026-11-21T09:58:00Z"},
            {"role": "ai", "text": "Let me get a person.", "at": "2026-11-21T09:59:00Z"},
        ],
        "segment": "enterprise",
        **changes,
    }
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
        self.state: dict[str, Any] | None = None

    def send(self, event: Envelope) -> Plan:
        plan = self.planner.on_event(self.state, event, now=self.world.tick())
        self.state = plan.state.to_json()
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
    link.state = link.planner.on_write(link.state, result, now=world.tick()).state.to_json()
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


def test_a_flow_for_a_platform_without_a_connector_is_refused() -> None:
    with pytest.raises(ValueError, match=r"handoff\.flows"):
        SyncConfig.model_validate({**RULES, "handoff": {"flows": {"intercom": {}}}})
