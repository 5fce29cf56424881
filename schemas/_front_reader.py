"""Where an Envelope comes from, read from the front of its bytes without the rest.

A reader that only routes events needs the source's connector and entity type (the chat relay:
is it a hand-off, or an event of a chat desk?). They sit near the front of an Envelope, after
its id: the source's platform, connector id, entity type and entity id. Its data, the record
with its nested lists and maps, comes after the operation and the changed fields, and is most
of what a whole decode reads and builds. The entity type is enough to tell a hand-off:
``Envelope`` refuses a Handoff under any other entity type, and any other data under
``handoff`` (``schemas.models``).

A writer schema whose Envelope does not begin that way gets no front reader, and bytes this
reader does not expect (a message cut short, an enum symbol this version does not know) give
None: the caller then decodes the whole message, which reads it or says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from schemas._compiled_reader import Unexpected, _long
from schemas.models import EntityType, Platform

__all__ = ["EnvelopeSource", "FrontReader", "compile_front_reader"]


class EnvelopeSource(NamedTuple):
    """The front of an Envelope's source."""

    platform: Platform
    connector_id: str
    entity_type: EntityType
    entity_id: str


#: reads the source at the front of an Envelope's body (from the offset given)
FrontReader = Callable[[bytes, int], EnvelopeSource]

#: what an Envelope must begin with for its front to be read: (field, Avro type) in order, the
#: source's fields inside it
_EVENT_FRONT = (("event_id", "string"), ("source", "record"))
_SOURCE_FRONT = (
    ("platform", "enum"),
    ("connector_id", "string"),
    ("entity_type", "enum"),
    ("entity_id", "string"),
)


def compile_front_reader(parsed: Any) -> FrontReader | None:
    """The front reader of the Envelope writer schema ``parsed`` (fastavro's parsed form),
    None when its fields do not begin as this reader expects."""
    named = parsed.get("__named_schemas", {})
    source = _front(parsed, _EVENT_FRONT, named)
    front = _front(source[1], _SOURCE_FRONT, named) if source is not None else None
    if front is None:
        return None
    platforms = _members(front[0], Platform)
    entity_types = _members(front[2], EntityType)

    def read(data: bytes, pos: int) -> EnvelopeSource:
        _, pos = _string_span(data, pos)  # the event id, not needed
        platform, pos = _index(data, pos)
        connector_id, pos = _string(data, pos)
        entity_type, pos = _index(data, pos)
        entity_id, _ = _string(data, pos)
        return EnvelopeSource(
            _member(platforms, platform),
            connector_id,
            _member(entity_types, entity_type),
            entity_id,
        )

    return read


def _front(
    record: Any, expected: tuple[tuple[str, str], ...], named: dict[str, Any]
) -> list[Any] | None:
    """The schemas of ``record``'s first fields when they are ``expected``, else None."""
    if not isinstance(record, dict) or record.get("type") != "record":
        return None
    fields = record.get("fields", [])
    if len(fields) < len(expected):
        return None
    found = []
    for field, (name, kind) in zip(fields, expected, strict=False):
        schema = field["type"]
        schema = named.get(schema, schema) if isinstance(schema, str) else schema
        actual: Any
        if isinstance(schema, str):
            actual = schema
        elif isinstance(schema, dict) and "logicalType" not in schema:
            actual = schema.get("type")
        else:  # a union, or a logical type
            return None
        if field["name"] != name or actual != kind:
            return None
        found.append(schema)
    return found


def _members(schema: Any, enum: type[Any]) -> tuple[Any, ...]:
    """The members of ``enum`` by the writer's symbol order (None for a symbol it lacks)."""
    by_value = {member.value: member for member in enum}
    return tuple(by_value.get(symbol) for symbol in schema["symbols"])


def _string_span(data: bytes, pos: int) -> tuple[int, int]:
    """Where the bytes of the string (or bytes) at ``pos`` start and end."""
    length, start = _long(data, pos)  # IndexError past the end: the message was cut short
    end = start + length
    if length < 0 or end > len(data):
        raise Unexpected("a length beyond the message")
    return start, end


def _string(data: bytes, pos: int) -> tuple[str, int]:
    """The string at ``pos`` (UnicodeDecodeError: not UTF-8) and the offset after it."""
    start, end = _string_span(data, pos)
    return data[start:end].decode(), end


def _index(data: bytes, pos: int) -> tuple[int, int]:
    index, pos = _long(data, pos)
    if index < 0:
        raise Unexpected("a negative enum index")
    return index, pos


def _member(members: tuple[Any, ...], index: int) -> Any:
    member = members[index]  # IndexError: beyond the writer's symbols
    if member is None:
        raise Unexpected("a symbol this version does not know")
    return member
