"""Query locators: the rest of a query's result, one batch per ``nextRecordsUrl``.

"Query" and "QueryAll" (REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
and .../resources_queryall.htm): a result larger than the batch comes back as the first batch,
``done: false`` and ``nextRecordsUrl`` ``/services/data/vXX.X/query/<locator>-<offset>``, the
same ``query`` path for QueryAll too ("Although the nextRecordsUrl has query in the URL, it
still provides the remaining results from the initial QueryAll request"). "Query Options
Header" (.../headers_queryoptions.htm): ``Sforce-Query-Options: batchSize=n``, default 2,000,
minimum 200, maximum 2,000, and "no guarantee that the requested batch size is the actual batch
size": the sandbox clamps to the range.

The result is fixed when the query runs: later pages hold the records as they were then. A
locator left unused for 15 minutes is gone ("queryMore()" in the SOAP API guide: "a query
cursor ... expires after 15 minutes of inactivity"); asking for it answers 400
``INVALID_QUERY_LOCATOR`` (the status is UNVERIFIED; the code is in the API's
``ExceptionCode`` list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.salesforce.ids import IdFactory
from sandboxes.salesforce.soql import SoqlError

__all__ = ["DEFAULT_BATCH", "MAX_BATCH", "MIN_BATCH", "Page", "QueryLocators", "batch_size"]

DEFAULT_BATCH = MAX_BATCH = 2000
MIN_BATCH = 200
IDLE_EXPIRY = timedelta(minutes=15)
_LOCATOR = re.compile(r"^(01g[0-9A-Za-z]{15})-(\d+)$")
_BATCH = re.compile(r"(?:^|[,;\s])batchSize\s*=\s*(\d+)", re.IGNORECASE)


def batch_size(header: str | None) -> int:
    """The batch a ``Sforce-Query-Options`` header asks for, inside the documented range."""
    match = _BATCH.search(header or "")
    if match is None:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]
    batch: int
    used_at: datetime


@dataclass(frozen=True)
class Page:
    """One answer of the query resources."""

    total_size: int
    records: list[dict[str, Any]]
    next_locator: str | None = None

    def body(self, version: str) -> dict[str, Any]:
        body: dict[str, Any] = {"totalSize": self.total_size, "done": self.next_locator is None}
        if self.next_locator is not None:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{self.next_locator}"
        body["records"] = self.records
        return body


class QueryLocators:
    """Open cursors of the org, by locator id."""

    def __init__(self, ids: IdFactory, clock: Clock) -> None:
        self._ids = ids
        self._clock = clock
        self._cursors: dict[str, _Cursor] = {}

    def first_page(self, rows: list[dict[str, Any]], batch: int) -> Page:
        """The first batch of ``rows``; a locator for the rest when they do not fit."""
        self._expire()
        if len(rows) <= batch:
            return Page(len(rows), rows)
        locator = self._ids.new("01g")
        self._cursors[locator] = _Cursor(rows, batch, self._clock.now())
        return Page(len(rows), rows[:batch], f"{locator}-{batch}")

    def next_page(self, raw: str) -> Page:
        """The batch at ``<locator>-<offset>``, or ``INVALID_QUERY_LOCATOR``."""
        self._expire()
        match = _LOCATOR.match(raw)
        cursor = self._cursors.get(match.group(1)) if match else None
        if match is None or cursor is None:
            raise SoqlError(
                "INVALID_QUERY_LOCATOR",
                "invalid query locator: it has expired (15 minutes unused) or never existed; "
                "run the query again",
            )
        locator, offset = match.group(1), int(match.group(2))
        cursor.used_at = self._clock.now()
        end = offset + cursor.batch
        rows = cursor.rows[offset:end]
        if end >= len(cursor.rows):
            # Kept until it expires: a client that lost this answer may ask again.
            return Page(len(cursor.rows), rows)
        return Page(len(cursor.rows), rows, f"{locator}-{end}")

    def _expire(self) -> None:
        cutoff = self._clock.now() - IDLE_EXPIRY
        for locator in [k for k, c in self._cursors.items() if c.used_at <= cutoff]:
            del self._cursors[locator]

    @property
    def open(self) -> int:
        return len(self._cursors)
