"""Reconciliation: re-read what changed in a recent window, and find what we did not learn.

Change Data Capture can lose events: gap events, overflow and events past the retention
window ("Change Event Header Fields", GAP_* change types,
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm;
"Change Data Capture Allocations": events are kept 72 hours), and a poll can miss a record
committed late (``polling``). So a reconciliation periodically re-reads every record whose
``SystemModstamp`` falls in a recent window and compares it with what we last knew of it.
Pure logic: :func:`window_query` builds the query (run it on QueryAll so that deletions show up
as ``IsDeleted`` true, "QueryAll" in the REST API Developer Guide), :func:`differences` yields
the records that differ from what we knew.

What we knew is a mapping ``Id`` → fingerprint. The default fingerprint is the record's
``SystemModstamp`` (every save moves it); :func:`content_fingerprint` hashes chosen fields for
callers who keep values rather than stamps (it ignores changes to other fields).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from connectors.salesforce.soql_text import (
    api_name,
    datetime_literal,
    field_path,
    parse_datetime,
)

__all__ = [
    "Difference",
    "Fingerprint",
    "content_fingerprint",
    "differences",
    "modstamp_fingerprint",
    "window_query",
]

Fingerprint = Callable[[Mapping[str, Any]], str]
_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Difference:
    """A re-read record that does not match what we knew: ``unknown`` or ``changed``."""

    kind: Literal["unknown", "changed"]
    record: Mapping[str, Any]
    fingerprint: str


def modstamp_fingerprint(record: Mapping[str, Any]) -> str:
    """The record's ``SystemModstamp`` in one spelling, whatever zone format REST used."""
    stamp = parse_datetime(record.get("SystemModstamp"), field="SystemModstamp")
    return stamp.isoformat(timespec="milliseconds")


def content_fingerprint(fields: Iterable[str]) -> Fingerprint:
    """A fingerprint of the values of ``fields`` (SHA-256 of their canonical JSON)."""
    names = tuple(sorted(fields))

    def fingerprint(record: Mapping[str, Any]) -> str:
        values = {name: record.get(name) for name in names}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    return fingerprint


def window_query(sobject: str, fields: Iterable[str], since: datetime, until: datetime) -> str:
    """Every record stamped in ``[since, until)`` (whole seconds), oldest first.

    ``since`` is rounded down and ``until`` up to whole seconds, so the window only grows.
    No LIMIT: the answer is paged with ``nextRecordsUrl``.
    """
    api_name(sobject)
    wanted = dict.fromkeys(["Id", "SystemModstamp", "IsDeleted", *map(field_path, fields)])
    end = until if until.microsecond == 0 else until.replace(microsecond=0) + _ONE_SECOND
    return (
        f"SELECT {', '.join(wanted)} FROM {sobject} "  # noqa: S608 - names are checked
        f"WHERE SystemModstamp >= {datetime_literal(since)} "
        f"AND SystemModstamp < {datetime_literal(end)} ORDER BY SystemModstamp, Id"
    )


def differences(
    records: Iterable[Mapping[str, Any]],
    known: Mapping[str, str],
    fingerprint: Fingerprint = modstamp_fingerprint,
) -> Iterator[Difference]:
    """The records whose fingerprint is not the one in ``known`` (by ``Id``), in input order."""
    for record in records:
        current = fingerprint(record)
        previous = known.get(str(record.get("Id")))
        if previous is None:
            yield Difference("unknown", record, current)
        elif previous != current:
            yield Difference("changed", record, current)
