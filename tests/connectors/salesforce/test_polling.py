"""The SystemModstamp cursor, run against the sandbox's own SOQL engine on in-memory records.

No HTTP here: each query the cursor builds is parsed and evaluated by the same code the
Salesforce sandbox answers ``/query`` with, so ordering, whole-second comparisons and
``LIMIT`` behave as they do there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.salesforce.polling import PollPosition, Resume, SoqlCursor
from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.ids import IdFactory
from sandboxes.salesforce.soql import parse
from sandboxes.salesforce.soql_eval import compile_query
from schemas.errors import SchemaError

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Table:
    """CaseComment rows as the org stores them, and the queries a poll sent."""

    ids: IdFactory = field(default_factory=lambda: IdFactory(random.Random(5)))
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def insert(self, stamp: datetime, count: int = 1) -> list[str]:
        new = [self.ids.for_object("CaseComment") for _ in range(count)]
        for record_id in new:
            self.rows[record_id] = {"Id": record_id, "SystemModstamp": stamp, "IsDeleted": False}
        return new

    def touch(self, record_id: str, stamp: datetime) -> None:
        self.rows[record_id]["SystemModstamp"] = stamp

    def run(self, soql: str) -> list[dict[str, Any]]:
        self.queries.append(soql)
        plan = compile_query(parse(soql), OBJECTS)

        def no_parents(sobject: str, record_id: str) -> None:
            return None

        rows = plan.run(list(self.rows.values()), no_parents)
        return [plan.render(r, "59.0", no_parents) for r in rows]


def poll(
    cursor: SoqlCursor, position: PollPosition, table: Table
) -> tuple[list[str], PollPosition]:
    """One poll to the end, the position stored as JSON between queries as a source would."""
    yielded: list[str] = []
    for _ in range(1000):
        step = cursor.advance(position, table.run(cursor.query(position)))
        yielded += [r["Id"] for r in step.changed]
        position = PollPosition.from_json(step.position.to_json())
        if not position.more:
            return yielded, position
    raise AssertionError("the poll never caught up")


def test_queries_per_phase() -> None:
    cursor = SoqlCursor("CaseComment", fields=("ParentId", "Id"), limit=200)
    second = T0 + timedelta(seconds=7)
    after_id = "00a5g0000012345AAA"

    assert cursor.query(PollPosition()) == (
        "SELECT Id, SystemModstamp, ParentId FROM CaseComment ORDER BY SystemModstamp, Id LIMIT 200"
    )
    assert cursor.query(PollPosition(high_water=T0 + timedelta(minutes=10, microseconds=5))) == (
        "SELECT Id, SystemModstamp, ParentId FROM CaseComment WHERE SystemModstamp >= "
        "2025-03-01T09:05:00Z ORDER BY SystemModstamp, Id LIMIT 200"
    )
    draining = PollPosition(resume=Resume(second=second, draining=True, after_id=after_id))
    assert cursor.query(draining).endswith(
        f"WHERE SystemModstamp = 2025-03-01T09:00:07Z AND Id > '{after_id}' ORDER BY Id LIMIT 200"
    )
    after = PollPosition(resume=Resume(second=second, draining=False))
    assert cursor.query(after).endswith(
        "WHERE SystemModstamp > 2025-03-01T09:00:07Z ORDER BY SystemModstamp, Id LIMIT 200"
    )


def test_ties_on_one_stamp_across_pages_are_each_yielded_once() -> None:
    table = Table()
    burst = table.insert(T0, 450)
    cursor = SoqlCursor("CaseComment", limit=200)

    yielded, position = poll(cursor, PollPosition(), table)

    assert sorted(yielded) == sorted(burst)
    assert position.high_water == T0
    # The first page (200), the tied second re-read by Id (200, 200, 50), then past it (0).
    assert len(table.queries) == 5
    assert any("Id > '" in q for q in table.queries)


def test_a_second_whose_milliseconds_disagree_with_id_order_loses_nobody() -> None:
    """ORDER BY SystemModstamp sorts by milliseconds; a full page can end mid-second."""
    table = Table()
    early = table.insert(T0 + timedelta(milliseconds=900), 3)
    late = table.insert(T0 + timedelta(milliseconds=100), 3)
    later = table.insert(T0 + timedelta(seconds=1), 2)
    cursor = SoqlCursor("CaseComment", limit=2)

    yielded, _ = poll(cursor, PollPosition(), table)

    assert sorted(yielded) == sorted(early + late + later)


def test_overlap_rereads_the_window_and_yields_only_what_is_new() -> None:
    table = Table()
    first = table.insert(T0, 5)
    cursor = SoqlCursor("CaseComment", overlap=timedelta(seconds=30), limit=200)
    _, position = poll(cursor, PollPosition(), table)
    # A transaction stamped 10 s before the high-water mark commits after the poll passed.
    late = table.insert(T0 - timedelta(seconds=10))
    newer = table.insert(T0 + timedelta(seconds=5), 2)

    yielded, position = poll(cursor, position, table)

    assert sorted(yielded) == sorted(late + newer)
    assert set(first) <= {record_id for record_id, _ in position.seen}
    assert position.high_water == T0 + timedelta(seconds=5)


def test_a_record_modified_again_is_yielded_again() -> None:
    table = Table()
    ids = table.insert(T0, 3)
    cursor = SoqlCursor("CaseComment", limit=200)
    _, position = poll(cursor, PollPosition(), table)
    table.touch(ids[1], T0 + timedelta(seconds=2))

    yielded, position = poll(cursor, position, table)
    again, _ = poll(cursor, position, table)

    assert yielded == [ids[1]]
    assert again == []


def test_clock_skew_inside_the_overlap_is_caught_outside_it_is_not() -> None:
    table = Table()
    table.insert(T0, 2)
    cursor = SoqlCursor("CaseComment", overlap=timedelta(seconds=60), limit=200)
    _, position = poll(cursor, PollPosition(), table)
    inside = table.insert(T0 - timedelta(seconds=59))
    outside = table.insert(T0 - timedelta(seconds=61))

    yielded, _ = poll(cursor, position, table)

    assert yielded == inside
    assert outside[0] not in yielded  # the reconciliation's job (test_reconcile.py)


def test_the_seen_set_keeps_only_the_overlap_window() -> None:
    table = Table()
    old = table.insert(T0, 50)
    cursor = SoqlCursor("CaseComment", overlap=timedelta(seconds=30), limit=200)
    _, position = poll(cursor, PollPosition(), table)
    recent = table.insert(T0 + timedelta(minutes=5), 3)

    _, position = poll(cursor, position, table)

    assert len(position.seen) == 3
    assert {record_id for record_id, _ in position.seen} == set(recent)
    assert not set(old) & {record_id for record_id, _ in position.seen}


def test_position_json_round_trip_and_corruption() -> None:
    position = PollPosition(
        high_water=T0,
        seen=(("00a5g0000012345AAA", T0),),
        resume=Resume(second=T0, draining=True, after_id="00a5g0000012345AAA"),
    )

    assert PollPosition.from_json(position.to_json()) == position
    with pytest.raises(SchemaError, match="delete it to poll again"):
        PollPosition.from_json('{"high_water": "yesterday"}')


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"overlap": timedelta(milliseconds=500)}, "at least one second"),
        ({"limit": 2001}, "between 1 and 2000"),
        # one parent hop is a field (a comment's Parent.Deskstream_Link_Id__c); two are not
        ({"fields": ("Parent.Owner.Name",)}, "not a Salesforce API name"),
    ],
    ids=["overlap-under-a-second", "limit-over-a-batch", "two-hop-field"],
)
def test_cursor_configuration_is_checked(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SoqlCursor("CaseComment", **kwargs)


def test_a_cursor_may_select_a_parents_field() -> None:
    cursor = SoqlCursor("CaseComment", fields=("ParentId", "Parent.Deskstream_Link_Id__c"))
    assert cursor.query(PollPosition()).startswith(
        "SELECT Id, SystemModstamp, ParentId, Parent.Deskstream_Link_Id__c FROM CaseComment"
    )
