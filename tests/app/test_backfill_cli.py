"""The backfill command's arguments: durations and dates, filters, the read's stored name."""

from __future__ import annotations

import pytest

from app.backfill_cli import _filters, backfill_name, parse_since
from schemas.errors import ConfigurationError
from streams.config import Route

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", int(NOW) - 90 * 86400),
        ("12h", int(NOW) - 12 * 3600),
        ("30m", int(NOW) - 1800),
        ("45s", int(NOW) - 45),
        ("2026-09-01", 1788220800),
        ("2026-09-01T08:00:00+02:00", 1788242400),
        (None, None),
    ],
    ids=["days", "hours", "minutes", "seconds", "date", "time-with-zone", "everything"],
)
def test_since_is_a_duration_back_or_a_date(text: str | None, expected: int | None) -> None:
    assert parse_since(text, now=NOW) == expected


def test_a_since_that_is_neither_says_what_it_takes() -> None:
    with pytest.raises(ConfigurationError, match="neither a duration"):
        parse_since("last week", now=NOW)


def test_filters_are_field_value_pairs() -> None:
    assert _filters(("state=open", "priority = priority")) == {
        "state": "open",
        "priority": "priority",
    }
    with pytest.raises(ConfigurationError, match="field=value"):
        _filters(("open",))


def test_the_same_arguments_resume_the_same_read() -> None:
    route = Route.model_validate({"from": "intercom", "to": "zendesk"})
    name = backfill_name(route, "90d", {"state": "open"})
    assert name.startswith("backfill.intercom-zendesk.")
    assert backfill_name(route, "90d", {"state": "open"}) == name
    assert backfill_name(route, "30d", {"state": "open"}) != name
