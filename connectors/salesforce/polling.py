"""Polling an object that publishes no change events: a SOQL cursor on ``SystemModstamp``.

``CaseComment`` is not on "Change Event Object Support" (Change Data Capture Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_object_support.htm),
so its changes are read with SOQL. Pure logic: :class:`SoqlCursor` builds the next query from a
:class:`PollPosition` and, from the page that query returned, decides which records are new or
changed and what the next position is. ``paging.poll`` runs it against the REST API.

What the cursor has to survive, and how:

* **Commits that land late.** A record can become visible after others with a later
  ``SystemModstamp`` were already read: the stamp is taken while the transaction runs, and a
  record still "in flight" at query time is not found (the salesforce.stackexchange.com answer
  cited below; UNVERIFIED on a reference page, query: "SystemModstamp in-flight transaction
  incremental query missed records"). Each poll re-reads an *overlap* window
  before the high-water mark (``SystemModstamp >= high_water - overlap``), and
  :attr:`PollPosition.seen` (``Id`` → ``SystemModstamp`` of what was already yielded inside
  that window) drops what was already yielded. A record modified again has a new stamp and is
  yielded again. The seen-set only holds records inside the window, so it stays bounded.
* **Whole-second comparisons.** SOQL compares dateTimes at whole seconds and takes literals in
  whole seconds ("Date Formats and Date Literals in WHERE", SOQL and SOSL Reference; that
  milliseconds are ignored in comparisons is from an answer on salesforce.stackexchange.com,
  "Using SystemModstamp and a timestamp to implement incremental data fetch", UNVERIFIED on
  a reference page), while ORDER BY may order by the milliseconds. So the cursor never resumes
  "after this exact stamp": it works in whole seconds.
* **More records in one second than a page holds** (a bulk insert). A full page means the
  scan may have stopped inside a second, so the cursor re-reads that second alone, paged by
  ``Id`` (``SystemModstamp = s AND Id > :last ORDER BY Id``), then goes on with
  ``SystemModstamp > s``. Each query therefore makes progress, whatever the page size. "ORDER
  BY" in the SOQL reference asks for ``Id`` as the tie-breaker for exactly this reason.

A record stamped earlier than ``high_water - overlap`` and committed after the poll passed is
missed: the periodic reconciliation (``reconcile``) is the net for it, and for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from connectors.salesforce.soql_text import (
    api_name,
    datetime_literal,
    field_path,
    id_literal,
    parse_datetime,
    whole_second,
)
from schemas.errors import FatalAPIError, SchemaError

__all__ = ["MAX_LIMIT", "PollPosition", "PollStep", "Resume", "SoqlCursor"]

#: The largest batch a query returns at once ("Query Options Header": maximum 2,000).
MAX_LIMIT = 2000


class Resume(BaseModel):
    """Where a poll goes on after a full page, within the same poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: A whole second (UTC).
    second: datetime
    #: True: re-read ``second`` alone, by Id. False: go on with what comes after it.
    draining: bool
    #: While draining: the last Id read in ``second``.
    after_id: str | None = None


class PollPosition(BaseModel):
    """Everything a poller must keep between polls; small, and stored as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The latest ``SystemModstamp`` seen.
    high_water: datetime | None = None
    #: ``(Id, SystemModstamp)`` of records seen inside the overlap window, sorted by Id.
    seen: tuple[tuple[str, datetime], ...] = ()
    #: Set while the current poll has more to read (the last page was full).
    resume: Resume | None = None

    @property
    def more(self) -> bool:
        """Whether to query again now rather than at the next poll."""
        return self.resume is not None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> PollPosition:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise SchemaError(
                f"stored Salesforce poll position is not valid ({exc.error_count()} errors, "
                f"first: {exc.errors()[0]['msg']}); delete it to poll again from the start"
            ) from None


@dataclass(frozen=True)
class PollStep:
    """The outcome of one page: what to emit, and the position that follows it."""

    changed: tuple[Mapping[str, Any], ...]
    position: PollPosition


@dataclass(frozen=True)
class SoqlCursor:
    """Incremental reads of one object by ``SystemModstamp``, ``limit`` records a query."""

    sobject: str
    fields: tuple[str, ...] = ()
    overlap: timedelta = timedelta(minutes=5)
    limit: int = 200

    def __post_init__(self) -> None:
        api_name(self.sobject)
        for name in self.fields:
            field_path(name)  # a parent's field too: a comment's Parent.<link field>
        # Under one second the window could end inside the second being re-read, and the
        # seen-set would forget records the same poll reads again.
        if self.overlap < timedelta(seconds=1):
            raise ValueError(f"overlap must be at least one second, not {self.overlap}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {self.limit}")

    @property
    def select(self) -> str:
        wanted = ["Id", "SystemModstamp", *self.fields]
        lowered: dict[str, str] = {}
        for name in wanted:
            lowered.setdefault(name.lower(), name)
        return ", ".join(lowered.values())

    def query(self, position: PollPosition) -> str:
        """The SOQL that reads the next page after ``position``."""
        resume = position.resume
        order = "SystemModstamp, Id"
        if resume is None:
            since = position.high_water
            where = "" if since is None else f"SystemModstamp >= {self._since(since)}"
        elif resume.draining:
            where = f"SystemModstamp = {datetime_literal(resume.second)}"
            if resume.after_id is not None:
                where += f" AND Id > {id_literal(resume.after_id)}"
            order = "Id"
        else:
            where = f"SystemModstamp > {datetime_literal(resume.second)}"
        clause = f" WHERE {where}" if where else ""
        # Every piece was checked by soql_text: names, ids and dateTimes only.
        head = f"SELECT {self.select} FROM {self.sobject}"  # noqa: S608
        return f"{head}{clause} ORDER BY {order} LIMIT {self.limit}"

    def _since(self, high_water: datetime) -> str:
        return datetime_literal(high_water - self.overlap)

    def advance(self, position: PollPosition, records: Sequence[Mapping[str, Any]]) -> PollStep:
        """Which of ``records`` (the page ``query(position)`` returned) are new or changed."""
        seen = dict(position.seen)
        high_water = position.high_water
        changed: list[Mapping[str, Any]] = []
        last: tuple[str, datetime] | None = None
        for record in records:
            record_id, stamp = _identity(record)
            previous = seen.get(record_id)
            if previous is None or stamp > previous:
                changed.append(record)
                seen[record_id] = stamp
            if high_water is None or stamp > high_water:
                high_water = stamp
            last = (record_id, stamp)
        resume = self._resume(position.resume, last, full=len(records) >= self.limit)
        if high_water is not None:
            floor = whole_second(high_water - self.overlap)
            seen = {i: s for i, s in seen.items() if whole_second(s) >= floor}
        return PollStep(
            tuple(changed),
            PollPosition(high_water=high_water, seen=tuple(sorted(seen.items())), resume=resume),
        )

    @staticmethod
    def _resume(
        current: Resume | None, last: tuple[str, datetime] | None, *, full: bool
    ) -> Resume | None:
        if full and last is not None:
            second = whole_second(last[1])
            if current is not None and current.draining and current.second == second:
                return Resume(second=second, draining=True, after_id=last[0])
            # The page may have stopped inside this second: read all of it, by Id.
            return Resume(second=second, draining=True)
        if current is not None and current.draining:
            return Resume(second=current.second, draining=False)
        return None


def _identity(record: Mapping[str, Any]) -> tuple[str, datetime]:
    record_id = record.get("Id")
    if not isinstance(record_id, str):
        raise FatalAPIError(
            "Salesforce answered a polled record without an Id; the poll stops here: check "
            "that the query selects Id"
        )
    id_literal(record_id)
    return record_id, parse_datetime(record.get("SystemModstamp"), field="SystemModstamp")
