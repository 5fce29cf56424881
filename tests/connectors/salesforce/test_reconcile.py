"""Reconciliation: the window query, and which re-read records differ from what we knew."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.salesforce.reconcile import (
    content_fingerprint,
    differences,
    modstamp_fingerprint,
    window_query,
)
from schemas.errors import FatalAPIError


def record(record_id: str, stamp: str, **values: object) -> dict[str, object]:
    return {"Id": record_id, "SystemModstamp": stamp, **values}


def test_window_query_rounds_outwards_and_orders_for_paging() -> None:
    since = datetime(2025, 3, 1, 9, 0, 0, 900_000, tzinfo=UTC)
    until = datetime(2025, 3, 1, 10, 0, 0, 100_000, tzinfo=UTC)

    assert window_query("CaseComment", ["CommentBody", "Id"], since, until) == (
        "SELECT Id, SystemModstamp, IsDeleted, CommentBody FROM CaseComment "
        "WHERE SystemModstamp >= 2025-03-01T09:00:00Z AND SystemModstamp < 2025-03-01T10:00:01Z "
        "ORDER BY SystemModstamp, Id"
    )


def test_differences_names_unknown_and_changed_records_only() -> None:
    same = record("a", "2025-03-01T09:00:00.000+0000")
    moved = record("b", "2025-03-01T09:05:00.000+0000")
    new = record("c", "2025-03-01T09:06:00.000+0000")
    known = {
        "a": modstamp_fingerprint(record("a", "2025-03-01T09:00:00Z")),
        "b": modstamp_fingerprint(record("b", "2025-03-01T09:00:00.000+0000")),
    }

    found = list(differences([same, moved, new], known))

    assert [(d.kind, d.record["Id"]) for d in found] == [("changed", "b"), ("unknown", "c")]
    assert found[0].fingerprint == "2025-03-01T09:05:00.000+00:00"


def test_content_fingerprint_sees_only_its_fields() -> None:
    fingerprint = content_fingerprint(["CommentBody", "IsDeleted"])
    before = record("a", "2025-03-01T09:00:00Z", CommentBody="hi", IsDeleted=False)
    known = {"a": fingerprint(before)}

    restamped = {**before, "SystemModstamp": "2025-03-01T09:30:00Z"}
    deleted = {**before, "IsDeleted": True}

    assert list(differences([restamped], known, fingerprint)) == []
    assert [d.kind for d in differences([deleted], known, fingerprint)] == ["changed"]


def test_a_record_without_a_stamp_is_refused_with_what_to_do() -> None:
    with pytest.raises(FatalAPIError, match="check that the query selects the field"):
        list(differences([{"Id": "a"}], {}))
