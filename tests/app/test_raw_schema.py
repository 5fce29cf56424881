"""The agents' input topics make each event straight from its message (``app.raw_schema``):
the same key, value and headers Faust's own schema gives with the "raw" serializers."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from faust.types import Message

from app.channels import inbound
from app.raw_schema import RawSchema


def _message(key: bytes | None, value: bytes | None, headers: Any) -> Message:
    return Message("deskstream.raw", 3, 41, 1_700_000_000.0, 0, headers, key, value, None)


MESSAGES = [
    _message(b"zendesk:ticket:7", b"\x00\x01avro body", [("trace", b"abc")]),
    _message(None, b"body without a key", []),
    _message(b"key of a tombstone", None, [("h", b"")]),
    _message(b"", b"", None),
]


@pytest.mark.parametrize("message", MESSAGES)
async def test_the_event_is_the_one_fausts_raw_serializers_make(message: Message) -> None:
    app = faust.App("raw-schema-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    faust_decode = faust.Schema(key_serializer="raw", value_serializer="raw").compile(app)
    schema = inbound(app, app.topic("deskstream.raw")).schema
    assert isinstance(schema, RawSchema)
    raw_decode = schema.compile(app)

    expected = await faust_decode(message, propagate=True)
    event = await raw_decode(message, propagate=True)

    assert type(event) is type(expected)
    assert event.key == expected.key
    assert event.value == expected.value
    assert event.headers == expected.headers
    assert event.message is message
    assert event.app is app


def test_every_input_topic_has_a_schema_of_its_own() -> None:
    # Faust writes a topic's serializers onto its schema object: one shared between topics
    # would let one topic's settings change another's.
    app = faust.App("raw-schema-own", broker="kafka://127.0.0.1:1", autodiscover=False)
    first = inbound(app, app.topic("deskstream.raw"))
    second = inbound(app, app.topic("deskstream.sync"), app.topic("deskstream.writes"))
    assert isinstance(first.schema, RawSchema)
    assert isinstance(second.schema, RawSchema)
    assert first.schema is not second.schema
    assert (first.schema.key_serializer, first.schema.value_serializer) == ("raw", "raw")
