"""Intercom's search query language, evaluated directly (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.search import (
    CONTACT_FIELDS,
    CONVERSATION_FIELDS,
    SearchSpec,
    compile_query,
    paginate,
)

CONTACTS = SearchSpec(CONTACT_FIELDS, day_granular_dates=True, default_per_page=50)
CONVERSATIONS = SearchSpec(CONVERSATION_FIELDS, day_granular_dates=False, default_per_page=20)

NOON = int(datetime(2025, 3, 10, 12, tzinfo=UTC).timestamp())
DAY = 86_400


def matches(spec: SearchSpec, query: dict[str, Any], record: dict[str, Any]) -> bool:
    return compile_query(spec, query)(record.get)


@pytest.mark.parametrize(
    ("operator", "value", "updated_at", "expected"),
    [
        ("=", NOON, NOON - 11 * 3600, True),  # same calendar day, earlier hour
        ("=", NOON, NOON + 12 * 3600, False),  # next day
        (">", NOON, NOON + 60, False),  # later the same day is not "after" the day
        (">", NOON, NOON + 12 * 3600, True),  # from the start of the next day
        ("<", NOON, NOON - 12 * 3600 - 1, True),  # before the day
        ("<", NOON, NOON - 60, False),  # same day
    ],
    ids=["eq-same-day", "eq-next-day", "gt-same-day", "gt-next-day", "lt-day-before", "lt-same"],
)
def test_contact_dates_match_by_calendar_day(
    operator: str, value: int, updated_at: int, expected: bool
) -> None:
    query = {"field": "updated_at", "operator": operator, "value": value}
    assert matches(CONTACTS, query, {"updated_at": updated_at}) is expected


@pytest.mark.parametrize("operator", ["!=", ">=", "<=", "IN", "NIN"])
def test_contact_dates_refuse_other_operators(operator: str) -> None:
    with pytest.raises(IntercomAPIError) as raised:
        compile_query(CONTACTS, {"field": "created_at", "operator": operator, "value": NOON})
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("operator", "updated_at", "expected"),
    [(">", NOON, True), (">", NOON - 1, False), ("<", NOON, True), ("<", NOON + 1, False)],
    ids=["gt-inclusive", "gt-before", "lt-inclusive", "lt-after"],
)
def test_conversation_dates_are_full_precision_and_inclusive(
    operator: str, updated_at: int, expected: bool
) -> None:
    query = {"field": "updated_at", "operator": operator, "value": str(NOON)}
    assert matches(CONVERSATIONS, query, {"updated_at": updated_at}) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("=", "ADA@example.com", True),
        ("!=", "ada@example.com", False),
        ("~", "example", True),
        ("!~", "example", False),
        ("^", "ada@", True),
        ("$", ".org", False),
        ("IN", ["x@y.z", "ada@example.com"], True),
        ("NIN", ["ada@example.com"], False),
    ],
    ids=["eq-casefold", "ne", "contains", "not-contains", "starts", "ends", "in", "nin"],
)
def test_string_operators(operator: str, value: Any, expected: bool) -> None:
    query = {"field": "email", "operator": operator, "value": value}
    assert matches(CONTACTS, query, {"email": "ada@example.com"}) is expected


def test_nested_groups_and_limits() -> None:
    query = {
        "operator": "AND",
        "value": [
            {
                "operator": "OR",
                "value": [
                    {"field": "open", "operator": "=", "value": True},
                    {"field": "admin_assignee_id", "operator": "=", "value": 7},
                ],
            },
            {"field": "tag_ids", "operator": "=", "value": "42"},
        ],
    }
    assert matches(CONVERSATIONS, query, {"open": False, "admin_assignee_id": 7, "tag_ids": ["42"]})
    assert not matches(CONVERSATIONS, query, {"open": True, "tag_ids": ["1"]})
    too_deep = {"operator": "AND", "value": [{"operator": "OR", "value": [query]}]}
    with pytest.raises(IntercomAPIError):
        compile_query(CONVERSATIONS, too_deep)
    too_wide = {
        "operator": "OR",
        "value": [{"field": "open", "operator": "=", "value": True}] * 16,
    }
    with pytest.raises(IntercomAPIError):
        compile_query(CONVERSATIONS, too_wide)


@pytest.mark.parametrize(
    "query",
    [
        {"field": "shoe_size", "operator": "=", "value": 1},
        {"field": "email", "operator": ">", "value": "a"},
        {"field": "owner_id", "operator": "=", "value": "abc"},
        {"field": "email", "operator": "IN", "value": "not-a-list"},
        {"operator": "AND", "value": []},
    ],
    ids=["unknown-field", "bad-operator", "bad-integer", "in-needs-array", "empty-group"],
)
def test_invalid_queries_are_400(query: dict[str, Any]) -> None:
    with pytest.raises(IntercomAPIError) as raised:
        compile_query(CONTACTS, query)
    assert (raised.value.status, raised.value.code) == (400, "parameter_invalid")


def test_cursor_pagination_survives_inserts() -> None:
    records = [(NOON, n) for n in range(5)]
    first = paginate(CONTACTS, records, {"per_page": 2}, key=lambda r: r)
    assert first.items == records[:2]
    assert first.pages["total_pages"] == 3
    cursor = first.pages["next"]["starting_after"]
    records.insert(0, (NOON - 10, 99))  # created before the cursor: not seen again
    second = paginate(CONTACTS, records, {"per_page": 2, "starting_after": cursor}, key=lambda r: r)
    assert second.items == [(NOON, 2), (NOON, 3)]
    assert second.pages["page"] == 2
    with pytest.raises(IntercomAPIError):
        paginate(CONTACTS, records, {"starting_after": "not-base64!"}, key=lambda r: r)
    with pytest.raises(IntercomAPIError):
        paginate(CONTACTS, records, {"per_page": 151}, key=lambda r: r)
