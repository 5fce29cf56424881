"""A link's state as the ``links`` table holds it: compact bytes, read and written on every
input of the link, so they must cost microseconds.

Layout (version 2)::

    version (1 byte) | len(seen) (2 bytes) | len(body) (4 bytes) | seen | body | outbox

``seen`` is the ``streams.recent_ids`` bytes as they are; ``body`` is the list of the other
fields in a fixed order (no field names, no deep copy), in ``marshal`` format 2; ``outbox`` is
the list of the outbox entries (each a list in ``_ENTRY`` order), in the same format, empty
when there are none. The outbox comes last so the agent can tell whether an input changed the
state before adding the input's own entry (``encode_body`` + ``encode_outbox``), with one
encode.

Why ``marshal`` and not JSON (version 1): the body is encoded on every input and decoded on
every input of a link not in memory; the C ``json`` module took 2-3 % of a worker's CPU there
(floats of the registers' times, the records' nested dicts), ``marshal`` about a fifth of that
to write and half to read. Its format 2 is the one without back-references, so equal states
give equal bytes (the agent compares them to skip a write), and it is stable: every CPython 3
reads it. It holds only what JSON held (the state's fields are JSON-shaped: str keys, lists,
no tuples; ``tests/streams/test_state.py`` pins that a long history decodes the same either
way). It is no format for data from outside: the table's changelog is written by this code
only (``streams.state``), as the JSON before it was.

Earlier encodings are still read, so a worker of this release continues from a changelog
written by the last ones: version 1 (the same layout, JSON body and outbox) and the table's
JSON of before (a JSON object: its first byte is ``{``). A worker of an earlier release
refuses version 2 with the reason (run one release on every worker of the group).
"""

from __future__ import annotations

import json
import marshal
import struct
from collections.abc import Sequence
from typing import Any

from schemas.errors import SchemaError
from streams.state import LinkState

__all__ = ["VERSION", "decode", "encode", "encode_body", "encode_outbox"]

VERSION = 2
#: the layout of version 2 with JSON body and outbox, still read
_JSON_VERSION = 1
#: marshal's format without back-references (``marshal`` module: version 3 added them)
_MARSHAL_FORMAT = 2
_HEAD = struct.Struct(">BHI")
#: the fields of an outbox entry (``streams.outbox``), in their encoded order
_ENTRY = ("topic", "partition", "offset", "commands", "audits", "retry_in", "timers")
#: how many body fields the first layout had, and the defaults of those appended since (a
#: new field goes at the end of the body with its default here, so no version bump is needed)
_FIRST_FIELDS = 14
_LATER_DEFAULTS: list[Any] = [{}]  # handoff


def encode(state: LinkState) -> bytes:
    return encode_body(state) + encode_outbox(state.outbox)


def encode_body(state: LinkState) -> bytes:
    """Everything but the outbox."""
    body = marshal.dumps(
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
        ],
        _MARSHAL_FORMAT,
    )
    return _HEAD.pack(VERSION, len(state.seen), len(body)) + state.seen + body


def encode_outbox(entries: Sequence[dict[str, Any]]) -> bytes:
    if not entries:
        return b""
    return marshal.dumps(
        [[entry.get(name) for name in _ENTRY] for entry in entries], _MARSHAL_FORMAT
    )


def _entries(values: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(_ENTRY, entry, strict=True)) for entry in values]


def decode(data: bytes) -> LinkState:
    if data[:1] == b"{":  # the JSON object of earlier releases
        return LinkState.from_json(json.loads(data))
    if not data or data[0] not in (VERSION, _JSON_VERSION) or len(data) < _HEAD.size:
        raise SchemaError(
            f"a link state in the links table has encoding version {data[:1].hex() or 'none'}, "
            f"this worker reads versions {_JSON_VERSION} and {VERSION}: a newer release wrote "
            "it; run the same release on every worker of the group"
        )
    version, seen_size, body_size = _HEAD.unpack_from(data)
    start = _HEAD.size + seen_size
    end = start + body_size
    load = marshal.loads if version == VERSION else json.loads
    body = load(data[start:end])
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
        outbox=_entries(load(data[end:])) if len(data) > end else [],
    )
