"""What a change event stream yields: one :class:`DecodedChange` per record id, or a
:class:`Reread` when the event cannot say what changed.

Both transports are read in the Streaming API payload shape (Pub/Sub records go through
:func:`~connectors.salesforce.cdc_events.from_pubsub` first), then split per record id by
:func:`~connectors.salesforce.cdc_events.expand`. Long text diffs stay in
``RecordChange.diffs``: applying one needs the prior value, which only the caller has
(:func:`~connectors.salesforce.cdc_events.resolve`).

Gap and overflow events become a :class:`Reread` ("Gap Events" and "Overflow Events",
Change Data Capture Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_other_events.htm):

- ``GAP_CREATE``/``GAP_UPDATE``/``GAP_DELETE``/``GAP_UNDELETE`` carry the header only, with the
  record ids: "your application can retrieve the Salesforce record using the record ID value
  to get the current data".
- ``GAP_OVERFLOW``: a transaction of more than 100,000 changes; the changes beyond them give
  "one overflow event for each entity type", which "doesn't include details about the change,
  such as the record fields or record ID". Every record of the entity changed by that
  transaction may be stale, so the re-read covers the entity since a bound before the commit:
  :data:`OVERFLOW_LOOKBACK`, the 10-minute maximum execution time of an Apex transaction
  (UNVERIFIED: "Execution Governors and Limits" as remembered, not re-read; searched the CDC
  guide for how long an overflowing transaction may run and found nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.salesforce.cdc_events import RecordChange, expand

__all__ = [
    "OVERFLOW_LOOKBACK",
    "ChangeHeader",
    "DecodedChange",
    "Reread",
    "StreamItem",
    "decode_payload",
]

OVERFLOW_LOOKBACK = timedelta(minutes=10)
_HEADER = "ChangeEventHeader"


def _commit_time(header: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(header["commitTimestamp"]) / 1000, UTC)


@dataclass(frozen=True, slots=True)
class ChangeHeader:
    """The ``ChangeEventHeader`` with field lists as names on both transports."""

    entity: str
    change_type: str
    record_ids: tuple[str, ...]
    changed_fields: tuple[str, ...]
    nulled_fields: tuple[str, ...]
    diff_fields: tuple[str, ...]
    commit_timestamp: datetime
    commit_number: int | None
    commit_user: str
    change_origin: str
    transaction_key: str
    sequence_number: int

    @classmethod
    def of(cls, header: Mapping[str, Any], change: RecordChange) -> ChangeHeader:
        changed = tuple(header.get("changedFields") or ())
        # The Streaming API sends no nulledFields/diffFields: a nulled field is an explicit
        # null in the body and a diffed one a {"diff": ...}; Pub/Sub names them in the header.
        nulled = header.get("nulledFields")
        if nulled is None:
            nulled = [n for n in changed if n in change.fields and change.fields[n] is None]
        diffed = header.get("diffFields")
        if diffed is None:
            diffed = list(change.diffs)
        commit_number = header.get("commitNumber")
        return cls(
            entity=str(header["entityName"]),
            change_type=str(header["changeType"]),
            record_ids=tuple(str(i) for i in header["recordIds"]),
            changed_fields=changed,
            nulled_fields=tuple(nulled),
            diff_fields=tuple(diffed),
            commit_timestamp=_commit_time(header),
            commit_number=None if commit_number is None else int(commit_number),
            commit_user=str(header.get("commitUser") or ""),
            change_origin=str(header.get("changeOrigin") or ""),
            transaction_key=str(header.get("transactionKey") or ""),
            sequence_number=int(header.get("sequenceNumber") or 0),
        )


@dataclass(frozen=True, slots=True)
class DecodedChange:
    """One record's share of a change event."""

    header: ChangeHeader
    record: RecordChange


@dataclass(frozen=True, slots=True)
class Reread:
    """Signal: the stream cannot say what changed; read the records over REST.

    ``entity`` None means every entity the channel carries; ``record_ids`` None means every
    record of the entity changed at or after ``since``; ``since`` None means no bound is
    known: reconcile everything.
    """

    entity: str | None
    record_ids: tuple[str, ...] | None
    since: datetime | None
    reason: str


StreamItem = DecodedChange | Reread


def decode_payload(payload: Mapping[str, Any]) -> list[StreamItem]:
    """The items of one change event in the Streaming API ``data.payload`` shape."""
    header = payload[_HEADER]
    change_type = str(header["changeType"])
    if change_type == "GAP_OVERFLOW":
        since = _commit_time(header) - OVERFLOW_LOOKBACK
        return [Reread(str(header["entityName"]), None, since, "overflow event (GAP_OVERFLOW)")]
    if change_type.startswith("GAP_"):
        ids = tuple(str(i) for i in header.get("recordIds") or ())
        # Without ids the whole entity is re-read, from the same bound as an overflow.
        since = _commit_time(header) if ids else _commit_time(header) - OVERFLOW_LOOKBACK
        return [Reread(str(header["entityName"]), ids or None, since, f"gap event ({change_type})")]
    changes = expand(payload)
    return [DecodedChange(ChangeHeader.of(header, change), change) for change in changes]
