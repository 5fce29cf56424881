"""A link's state as the ``links`` table holds it: compact bytes, read and written on every
input of the link, so they must cost microseconds.

Layout (version 1)::

    version (1 byte) | len(seen) (2 bytes) | len(body) (4 bytes) | seen | body | outbox

``seen`` is the ``streams.recent_ids`` bytes as they are; ``body`` is the JSON array of the
other fields in a fixed order (no field names, no deep copy: the C encoder walks the live
values); ``outbox`` is the JSON array of the outbox entries (each an array in ``_ENTRY`` order),
empty when there are none. The
outbox comes last so the agent can tell whether an input changed the state before adding
the input's own entry (``encode_body`` + ``encode_outbox``), with one encode.

The table's JSON of earlier releases (a JSON object: its first byte is ``{``) is still read,
so a worker of this release continues from a changelog written by the last one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

from schemas.errors import SchemaError
from streams.state import LinkState

__all__ = ["VERSION", "decode", "encode", "encode_body", "encode_outbox"]

VERSION = 1
_HEAD = struct.Struct(">BHI")
#: the fields of an outbox entry (``streams.outbox``), in their encoded order
_ENTRY = ("topic", "partition", "offset", "commands", "audits", "retry_in", "timers")
#: how many body fields the first layout had, and the defaults of those appended since (a
#: new field goes at the end of the body with its default here, so no version bump is needed)
_FIRST_FIELDS = 14
_LATER_DEFAULTS: list[Any] = [{}]  # handoff
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


def encode(state: LinkState) -> bytes:
    return encode_body(state) + encode_outbox(state.outbox)


def encode_body(state: LinkState) -> bytes:
    """Everything but the outbox."""
    body = _dumps(
        [
            state.link_id,
            state.kind,
            state.members,
            state.connectors,
            state.origin,
            state.creating,
            state.mirrors,
            state.thread,
            state.thread_ids,
            state.records,
            state.registers,
            state.holds,
            state.agents,
            state.steps,
            state.handoff,
        ]
    ).encode()
    return _HEAD.pack(VERSION, len(state.seen), len(body)) + state.seen + body


def encode_outbox(entries: Sequence[dict[str, Any]]) -> bytes:
    if not entries:
        return b""
    return _dumps([[entry.get(name) for name in _ENTRY] for entry in entries]).encode()


def _entries(data: bytes) -> list[dict[str, Any]]:
    return [dict(zip(_ENTRY, values, strict=True)) for values in json.loads(data)]


def decode(data: bytes) -> LinkState:
    if data[:1] == b"{":  # the JSON object of earlier releases
        return LinkState.from_json(json.loads(data))
    if not data or data[0] != VERSION or len(data) < _HEAD.size:
        raise SchemaError(
            f"a link state in the links table has encoding version {data[:1].hex() or 'none'}, "
            f"this worker reads version {VERSION}: a newer release wrote it; run the same "
            "release on every worker of the group"
        )
    _, seen_size, body_size = _HEAD.unpack_from(data)
    start = _HEAD.size + seen_size
    end = start + body_size
    body = json.loads(data[start:end])
    # Fields added later sit at the end: a shorter body comes from an older worker.
    body += _LATER_DEFAULTS[len(body) - _FIRST_FIELDS :]
    (
        link_id,
        kind,
        members,
        connectors,
        origin,
        creating,
        mirrors,
        thread,
        thread_ids,
        records,
        registers,
        holds,
        agents,
        steps,
        handoff,
    ) = body
    return LinkState(
        link_id=link_id,
        kind=kind,
        members=members,
        connectors=connectors,
        origin=origin,
        creating=creating,
        seen=data[_HEAD.size : start],
        mirrors=mirrors,
        thread=thread,
        thread_ids=thread_ids,
        records=records,
        registers=registers,
        holds=holds,
        agents=agents,
        steps=steps,
        handoff=handoff,
        outbox=_entries(data[end:]) if len(data) > end else [],
    )
