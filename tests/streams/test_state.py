"""A link's state in the table: its encoding (``streams.state_codec``), the JSON of earlier
releases, and the bounds that keep it small whatever the link's history."""

from __future__ import annotations

import json
import struct
from dataclasses import fields
from typing import Any

import pytest

from bench.link_state import drive
from connectors.base.links import case_link_id
from schemas.errors import SchemaError
from schemas.models import Op
from streams import state_codec
from streams.state import MAX_MIRRORS, MAX_SEEN, LinkState
from streams.state_codec import _ENTRY as ENTRY
from tests.streams.builders import IC, World
from tests.streams.test_sync import Link, escalated

DAY = 24 * 60 * 60
T0 = 1_780_000_000.0


def _state() -> LinkState:
    state = LinkState.new(case_link_id("intercom", IC, "conv-1"), "case")
    state.members = {"intercom": "conv-1", "zendesk": "t-7"}
    state.mirrors = {"intercom:p-1": "zendesk:c-1", "ack:zendesk": "cmd-1"}
    state.registers = {"status": {"w": [T0, "zendesk", "solved"], "seen": {}}}
    state.records = {"intercom": {"subject": "Charged twice — ünïcode", "tags": ["vip"]}}
    state.seen_before("evt-1", T0, DAY)
    state.steps = 7
    state.outbox = [
        {
            "topic": "t",
            "partition": 0,
            "offset": 3,
            "commands": ["AAE="],
            "audits": [],
            "retry_in": 1.0,
            "timers": ["AAI="],
        }
    ]
    state.holds = {"salesforce": {"since": T0, "until": T0 + 180, "seconds": 180}}
    state.handoff = {"platform": "zendesk", "handoff_id": "h-1"}
    state.agents = {"zendesk": "agent@example.com"}
    state.creating = ["salesforce"]
    state.thread_ids = ["p-1"]
    state.origin = "intercom"
    state.connectors = {"intercom": IC, "zendesk": "zd"}
    state.thread = [{"id": "p-1", "body": "Hello"}]
    return state


def test_every_field_of_the_state_is_set_in_the_round_trip_example() -> None:
    """A field left at its default here could be dropped by the encoding unnoticed (the
    hand-off's field once was): a new field must be added to ``_state`` and to the codec."""
    state, empty = _state(), LinkState.new("another-link", "contact")
    unset = [f.name for f in fields(LinkState) if getattr(state, f.name) == getattr(empty, f.name)]
    assert unset == []


def test_the_encoding_gives_back_the_same_state() -> None:
    state = _state()
    raw = state_codec.encode(state)
    assert raw[0] == state_codec.VERSION
    assert state_codec.decode(raw) == state
    # Without outbox entries the state ends with its body.
    state.outbox = []
    assert state_codec.decode(state_codec.encode(state)) == state


def _version_1(state: LinkState, *, fields: int = 15) -> bytes:
    """The layout of version 1, as the last release wrote it: JSON body and outbox (the body's
    first ``fields`` fields: 14 in the first layout, before the hand-off)."""
    body = json.dumps(_body_of(state)[:fields], separators=(",", ":"), ensure_ascii=False)
    entries = [[entry.get(name) for name in ENTRY] for entry in state.outbox]
    outbox = json.dumps(entries, separators=(",", ":")).encode() if entries else b""
    encoded = body.encode()
    return struct.pack(">BHI", 1, len(state.seen), len(encoded)) + state.seen + encoded + outbox


def _body_of(state: LinkState) -> list[Any]:
    names = [f.name for f in fields(LinkState) if f.name not in ("seen", "outbox")]
    return [getattr(state, name) for name in names]


def test_a_state_of_version_1_json_is_still_read() -> None:
    state = _state()
    assert state_codec.decode(_version_1(state)) == state
    state.outbox = []
    assert state_codec.decode(_version_1(state)) == state


def test_a_body_written_before_later_fields_reads_them_as_defaults() -> None:
    state = _state()
    decoded = state_codec.decode(_version_1(state, fields=14))  # without the hand-off
    assert decoded.handoff == {}
    assert decoded.steps == state.steps


def test_a_long_history_decodes_the_same_from_marshal_as_from_json() -> None:
    """Version 2 is marshal, which keeps what JSON would not (a tuple, an int key): every
    state of a long link history must come back as its JSON would, types included, and
    encode to the same bytes again (the agent compares them to skip a write)."""
    compared, last = 0, None
    for _, raw, _ in drive(1500):
        if raw is None or raw is last:
            continue
        last = raw
        assert raw[0] == state_codec.VERSION
        state = state_codec.decode(raw)
        from_json = state_codec.decode(_version_1(state))
        assert _typed(state.to_json()) == _typed(from_json.to_json())
        assert state_codec.encode(from_json) == raw
        compared += 1
    assert compared > 1000


def _typed(value: Any) -> Any:
    # == alone says (1,) == [1]? No, but 1 == 1.0 == True: compare the types too.
    if isinstance(value, dict):
        return {(type(k), k): _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value), [_typed(v) for v in value])
    return (type(value), value)


def test_the_json_of_earlier_releases_is_still_read() -> None:
    """A changelog written by the last release holds JSON objects (Faust's json serializer),
    with ``seen`` as an id → time map: this release continues from it."""
    old = {
        "link_id": "l-1",
        "kind": "case",
        "members": {"intercom": "conv-1"},
        "connectors": {"intercom": IC},
        "origin": "intercom",
        "creating": [],
        "seen": {f"evt-{n}": T0 + n for n in range(MAX_SEEN + 10)},
        "mirrors": {},
        "thread": [],
        "thread_ids": [],
        "records": {},
        "registers": {},
        "agents": {},
        "steps": 12,
        "outbox": [],
        "values": {"status": "open"},  # predates the registers: dropped
    }
    state = state_codec.decode(json.dumps(old).encode())
    assert (state.link_id, state.members, state.steps) == ("l-1", {"intercom": "conv-1"}, 12)
    now = T0 + MAX_SEEN + 10
    # The newest ids are remembered; the oldest beyond the bound are not.
    assert state.seen_before(f"evt-{MAX_SEEN + 9}", now, DAY)
    assert not state.seen_before("evt-0", now, DAY)


def test_a_state_of_an_unknown_version_is_refused_with_the_reason() -> None:
    raw = bytes([state_codec.VERSION + 1]) + state_codec.encode(_state())[1:]
    with pytest.raises(SchemaError, match="newer release"):
        state_codec.decode(raw)


def test_input_ids_are_bounded_in_count_and_time() -> None:
    state = LinkState.new("l-1", "case")
    for n in range(MAX_SEEN * 3):
        assert not state.seen_before(f"evt-{n}", T0, DAY)
    assert len(state.seen) <= 1 + 12 * MAX_SEEN
    assert state.seen_before(f"evt-{MAX_SEEN * 3 - 1}", T0, DAY)
    assert not state.seen_before(f"evt-{MAX_SEEN * 3 - 1}", T0 + DAY + 1, DAY)  # expired


def test_the_thread_copy_goes_once_the_mirror_exists(world: World) -> None:
    """The thread is kept for the create's history; once the ticket exists, the link holds
    no copy of the conversation, and later messages are not kept either."""
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    assert link.state is not None
    assert link.state["thread_ids"] == ["p-1"]
    escalated_link = Link(World())
    escalated(escalated_link.world, escalated_link)
    state = escalated_link.state
    assert state is not None
    assert (state["thread"], state["thread_ids"]) == ([], [])
    plan = escalated_link.send(escalated_link.world.part("p-3", "any news?"))
    assert [c.target.platform.value for c in plan.commands] == ["zendesk"]  # still copied
    assert escalated_link.state is not None
    assert escalated_link.state["thread"] == []


def test_mirrors_are_bounded_but_keep_the_first_message_and_the_pending_ones(
    world: World,
) -> None:
    link = Link(world)
    escalated(world, link)  # p-1 and p-2 mirrored by the create
    for n in range(3, MAX_MIRRORS + 20):
        [copy] = link.send(world.part(f"p-{n}", f"message {n}")).commands
        if n < MAX_MIRRORS + 19:
            link.written(copy, "t-7", created={"message": f"c-{n}"})
    state = link.state
    assert state is not None
    mirrors = state["mirrors"]
    assert len(mirrors) <= MAX_MIRRORS + 1
    assert mirrors["intercom:p-1"] == "zendesk:c-1"  # the first message: reported again often
    assert mirrors[f"intercom:p-{MAX_MIRRORS + 19}"].startswith("pending:")  # its answer is due
    assert "intercom:p-5" not in mirrors  # an old settled one is forgotten
    # The first message reported again (a new event id) is still not copied twice.
    again = link.send(world.part("p-1", "I was charged twice"))
    assert again.commands == []


@pytest.fixture
def world() -> World:
    return World()
