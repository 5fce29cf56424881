"""The live chat's decisions (``streams.chat``), on plain values."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import encode, envelope_source
from schemas.models import (
    Actor,
    ActorKind,
    Attachment,
    Case,
    CaseStatus,
    EntityType,
    Envelope,
    Handoff,
    Message,
    Op,
    Platform,
    Source,
)
from streams.chat import (
    CUSTOMER_MESSAGE,
    Action,
    Notice,
    chat_key,
    client_view,
    decide,
    may_be_a_chats,
    notice,
)
from tests.schemas.strategies import for_model

AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DESKS = frozenset({"desk"})


def _event(connector: str, event_type: str, data: Handoff | Message | Case) -> Envelope:
    return Envelope(
        event_id=f"e-{event_type}",
        source=Source(
            platform=Platform.GENERIC,
            connector_id=connector,
            # a hand-off's entity type is "handoff" (Envelope refuses any other)
            entity_type=EntityType.HANDOFF if isinstance(data, Handoff) else EntityType.CASE,
            entity_id="c1",
            event_type=event_type,
            actor=Actor(kind=ActorKind.SYSTEM),
            occurred_at=AT,
        ),
        op=Op.UPDATE,
        data=data,
        ingested_at=AT,
    )


def _message(kind: ActorKind, text: str = "hi") -> Message:
    return Message(
        case_id="c1",
        author=Actor(kind=kind, name="Sam"),
        body_text=text,
        public=True,
        created_at=AT,
        attachments=[Attachment(name="a.png", content_type="image/png", source_url="https://f/a")],
    )


def test_only_a_live_chat_handoff_starts_a_session() -> None:
    live = Handoff(case_id="c1", reason="asked", target="live_chat")
    ticket = Handoff(case_id="c1", reason="asked", target="zendesk_ticket")
    assert decide(_event("widget", "handoff", live), desks=DESKS).action is Action.START
    assert decide(_event("widget", "handoff", ticket), desks=DESKS).action is Action.NOTHING


def test_customer_messages_are_forwarded_and_the_desks_release_ends() -> None:
    said = _event("widget", CUSTOMER_MESSAGE, _message(ActorKind.CUSTOMER))
    assert decide(said, desks=DESKS).action is Action.FORWARD
    # The desk's own messages (the agent's, our echo of the customer's) are not forwarded.
    echoed = _event("desk", CUSTOMER_MESSAGE, _message(ActorKind.CUSTOMER))
    assert decide(echoed, desks=DESKS).action is Action.NOTHING
    released = _event("desk", "released", Case(status=CaseStatus.SOLVED))
    assert decide(released, desks=DESKS).action is Action.END
    assert decide(_event("widget", "x", Case(status=CaseStatus.SOLVED)), desks=DESKS).action is (
        Action.NOTHING
    )


def test_the_client_sees_agents_and_bots_the_end_and_notices_not_itself() -> None:
    agent = client_view(
        _event("desk", "message", _message(ActorKind.AGENT)), desks=DESKS, ended_text="bye"
    )
    assert agent is not None
    assert agent["type"] == "message"
    assert agent["author"] == {"kind": "agent", "name": "Sam"}
    assert agent["attachments"] == [
        {"name": "a.png", "content_type": "image/png", "url": "https://f/a"}
    ]
    for hidden in (ActorKind.CUSTOMER, ActorKind.INTEGRATION):
        event = _event("desk", "message", _message(hidden))
        assert client_view(event, desks=DESKS, ended_text="bye") is None
    own = _event("widget", CUSTOMER_MESSAGE, _message(ActorKind.AGENT))
    assert client_view(own, desks=DESKS, ended_text="bye") is None
    ended = _event("desk", "released", Case(status=CaseStatus.SOLVED))
    assert client_view(ended, desks=DESKS, ended_text="bye") == {
        "event_id": "e-released",
        "type": "ended",
        "text": "bye",
    }


def test_a_notice_has_an_id_derived_from_its_cause() -> None:
    cause = _event("widget", CUSTOMER_MESSAGE, _message(ActorKind.CUSTOMER))
    made = [
        notice(
            cause,
            Notice.NOT_FORWARDED,
            platform=Platform.GENERIC,
            connector_id="desk",
            chat_id="c1",
            at=AT,
        )
        for _ in range(2)
    ]
    assert made[0].event_id == made[1].event_id
    view = client_view(made[0], desks=DESKS, ended_text="")
    assert view is not None
    assert view["type"] == "not_forwarded"


def test_a_chat_key_is_scoped_by_its_client() -> None:
    assert chat_key("widget", "c-1") != chat_key("widget_b", "c-1")


@settings(max_examples=200, deadline=None)
@given(for_model(Envelope), st.booleans())
def test_the_relay_reads_the_front_of_every_event_a_chat_may_need(
    event: Envelope, from_a_desk: bool
) -> None:
    # What the relay decodes, from the front of the bytes: every hand-off (a live chat's
    # when its target is) and every event of a desk, and nothing else.
    desks = frozenset({event.source.connector_id}) if from_a_desk else frozenset()
    source = envelope_source(encode(event))
    assert source is not None
    needed = isinstance(event.data, Handoff) or event.source.entity_type is EntityType.HANDOFF
    assert may_be_a_chats(source, desks=desks) is (needed or from_a_desk)


def test_a_live_chat_handoff_and_a_desks_events_pass_the_relays_front_read() -> None:
    live = Handoff(case_id="c1", reason="asked", target="live_chat")
    for event in (
        _event("widget", "handoff", live),
        _event("desk", "released", Case(status=CaseStatus.SOLVED)),
    ):
        source = envelope_source(encode(event))
        assert source is not None
        assert decide(event, desks=DESKS).action is not Action.NOTHING
        assert may_be_a_chats(source, desks=DESKS)
    other = _event("zendesk", "ticket.updated", Case(status=CaseStatus.OPEN))
    source = envelope_source(encode(other))
    assert source is not None
    assert not may_be_a_chats(source, desks=DESKS)
