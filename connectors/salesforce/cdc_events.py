"""Reading Salesforce change events: one :class:`RecordChange` per record id, diffs applied.

What a consumer must not get wrong, from the Change Data Capture Developer Guide:

- One event can stand for many records. "If in one transaction the same change occurred in
  multiple records of the same object type during one second, Salesforce merges the change
  notifications ... the recordIds field contains the IDs for all records that have the same
  change" ("ChangeEventHeader Fields",
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm;
  "Merged Change Events",
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_subscribe_merged_events.htm).
  :func:`expand` returns one change per id, so a bulk close or delete loses nobody.
- Long text fields can arrive as a unified diff of the previous value, ``"--- \\n+++ <SHA-256
  of the new value>\\n"`` then hunks ("Sending Data Differences for Fields of Updated
  Records",
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_data_diff.htm;
  "Data Differences in Event Fields",
  https://developer.salesforce.com/docs/atlas.en-us.260.0.change_data_capture.meta/change_data_capture/cdc_data_diff_event_fields.htm).
  :func:`apply_text_diff` rebuilds the value with the line breaks of the prior value and checks
  the hash, as "Considerations for Newline Characters and Computing the SHA-256 Hash" asks
  (https://developer.salesforce.com/docs/platform/change-data-capture/guide/cdc-data-diff-event-fields-considerations.html).
  When it cannot (no prior value, a hunk that does not match, a hash that differs),
  :func:`resolve` raises :class:`RereadRecord`: read the record over REST instead of guessing.
- The two APIs render events differently ("Differences Between Change Events Received with
  Streaming API vs. Pub/Sub API",
  https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/cdc_event_diff_pubsub_cometd.htm;
  "Event Deserialization Considerations",
  https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations.html).
  :func:`expand` reads the CometD JSON payload; :func:`from_pubsub` turns a decoded Pub/Sub
  record (bitmaps, every field present) into that shape first. Over CometD there is no
  ``nulledFields``: a changed field set to null is an explicit ``null``; a changed field that
  is missing from the body (field-level security, or a platform that omits nulls) has an
  unknown value and is reported in :attr:`RecordChange.unknown`, which :func:`resolve` turns
  into a re-read too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DiffNotApplicable",
    "RecordChange",
    "RereadRecord",
    "apply_text_diff",
    "bitmap_field_names",
    "expand",
    "from_pubsub",
    "resolve",
]

_HEADER = "ChangeEventHeader"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class DiffNotApplicable(ValueError):
    """A unified diff does not fit the prior value (or its hash does not match)."""


class RereadRecord(Exception):
    # A predicate for control flow (like faust's Skip), not an error of ours: no DeskstreamError.
    """The event does not say what the record now holds: read it over REST instead."""

    def __init__(self, record_id: str, fields: Sequence[str], reason: str) -> None:
        super().__init__(f"re-read {record_id}: {reason} (fields {', '.join(fields)})")
        self.record_id = record_id
        self.fields = tuple(fields)
        self.reason = reason


@dataclass(frozen=True)
class RecordChange:
    """One record's share of a change event."""

    entity: str
    record_id: str
    change_type: str
    #: Values the event carries, compound components flattened (``Name.FirstName``); a field
    #: an update set to null is present with ``None``.
    fields: Mapping[str, Any]
    #: Long text fields sent as a unified diff of the previous value: field -> diff text.
    diffs: Mapping[str, str]
    #: Fields the header says changed whose new value the event does not carry.
    unknown: frozenset[str]
    header: Mapping[str, Any]


def _flatten(body: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in body.items():
        if name == _HEADER:
            continue
        if isinstance(value, Mapping) and "diff" not in value:
            flat.update({f"{name}.{part}": v for part, v in value.items()})
        else:
            flat[name] = value
    return flat


def expand(payload: Mapping[str, Any]) -> list[RecordChange]:
    """One :class:`RecordChange` per id in ``recordIds`` (CometD ``data.payload`` shape)."""
    header = payload[_HEADER]
    fields: dict[str, Any] = {}
    diffs: dict[str, str] = {}
    for name, value in _flatten(payload).items():
        if isinstance(value, Mapping):
            diffs[name] = str(value["diff"])
        else:
            fields[name] = value
    for name in header.get("nulledFields") or ():
        fields[name] = None
    unknown = frozenset(
        name
        for name in header.get("changedFields") or ()
        if name not in fields and name not in diffs
    )
    return [
        RecordChange(
            entity=str(header["entityName"]),
            record_id=str(record_id),
            change_type=str(header["changeType"]),
            fields=dict(fields),
            diffs=dict(diffs),
            unknown=unknown,
            header=header,
        )
        for record_id in header["recordIds"]
    ]


def resolve(change: RecordChange, prior: Mapping[str, Any]) -> dict[str, Any]:
    """The changed fields' new values: carried values plus diffs applied to ``prior`` values.

    Raises :class:`RereadRecord` for a gap event, a field of unknown value, or a diff that
    does not apply to the prior value.
    """
    if change.change_type.startswith("GAP_"):
        raise RereadRecord(change.record_id, (), f"gap event {change.change_type}")
    if change.unknown:
        raise RereadRecord(change.record_id, sorted(change.unknown), "value not in the event")
    values = dict(change.fields)
    for name, diff in change.diffs.items():
        before = prior.get(name)
        try:
            if not isinstance(before, str):
                raise DiffNotApplicable("no prior value to apply the diff to")
            values[name] = apply_text_diff(before, diff)
        except DiffNotApplicable as exc:
            raise RereadRecord(change.record_id, (name,), str(exc)) from exc
    return values


def apply_text_diff(prior: str, diff: str) -> str:
    """``prior`` with Salesforce's unified ``diff`` applied, checked against the diff's hash."""
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a trailing newline ends the last line; it is not a line of its own
    if len(lines) < 2 or lines[0].rstrip() != "---" or not lines[1].startswith("+++ "):
        raise DiffNotApplicable("not a Salesforce unified diff (no ---/+++ header)")
    expected_hash = lines[1][4:].strip().lower()
    newline = "\r\n" if "\r\n" in prior else "\n"
    old = prior.split(newline)
    result: list[str] = []
    position = 0  # lines of ``old`` consumed so far
    index = 2
    while index < len(lines):
        match = _HUNK.match(lines[index])
        if match is None:
            raise DiffNotApplicable(f"expected a hunk header, got {lines[index][:40]!r}")
        start, count = int(match[1]), int(match[2] or 1)
        # An empty range names the line before it; otherwise the 1-based first line.
        first = start if count == 0 else start - 1
        if first < position or first > len(old):
            raise DiffNotApplicable("hunks out of order or beyond the prior value")
        result += old[position:first]
        position = first
        index += 1
        while index < len(lines) and not lines[index].startswith("@@"):
            line = lines[index]
            kind, text = line[:1], line[1:]
            if kind in (" ", "-"):
                if position >= len(old) or old[position] != text:
                    raise DiffNotApplicable(f"line {position + 1} does not match the diff")
                position += 1
                if kind == " ":
                    result.append(text)
            elif kind == "+":
                result.append(text)
            else:
                raise DiffNotApplicable(f"unexpected diff line {line[:40]!r}")
            index += 1
    result += old[position:]
    value = newline.join(result)
    if hashlib.sha256(value.encode()).hexdigest() != expected_hash:
        raise DiffNotApplicable("SHA-256 of the rebuilt value differs from the event's")
    return value


def bitmap_field_names(schema: Mapping[str, Any], bitmaps: Sequence[str]) -> list[str]:
    """Field names a Pub/Sub header bitmap marks (bit ``i``, least significant first, is the
    schema's field ``i``; ``"<pos>-0x.."`` marks components of the compound field at ``pos``)."""
    fields = schema["fields"]
    names: list[str] = []
    for entry in bitmaps:
        parent, _, hex_bits = entry.rpartition("-")
        bits = int(hex_bits, 16)
        if parent:
            compound = fields[int(parent)]
            record_type = next(t for t in compound["type"] if isinstance(t, Mapping))
            names += [
                f"{compound['name']}.{c['name']}"
                for i, c in enumerate(record_type["fields"])
                if bits >> i & 1
            ]
        else:
            names += [f["name"] for i, f in enumerate(fields) if bits >> i & 1]
    return names


def from_pubsub(record: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded Pub/Sub change event in the CometD payload shape :func:`expand` reads.

    Header bitmaps become field names; the body keeps what CometD would send: the changed
    fields of an update (diffed ones as ``{"diff": ...}``, nulled ones as ``None``) and the
    populated fields of a create or undelete. Dates stay epoch milliseconds.
    """
    header = dict(record[_HEADER])
    for name in ("changedFields", "nulledFields", "diffFields"):
        header[name] = bitmap_field_names(schema, header.get(name) or ())
    body: dict[str, Any] = {_HEADER: header}
    change_type = str(header["changeType"])
    if change_type == "UPDATE":
        for name in header["changedFields"]:
            parent, _, part = name.partition(".")
            value = record.get(parent)
            if part:
                value = value.get(part) if isinstance(value, Mapping) else None
                body.setdefault(parent, {})[part] = value
            else:
                body[name] = {"diff": value} if name in header["diffFields"] else value
    elif change_type in ("CREATE", "UNDELETE"):
        for name, value in record.items():
            if name == _HEADER or value is None:
                continue
            if isinstance(value, Mapping):
                value = {k: v for k, v in value.items() if v is not None}
            body[name] = value
    return body
