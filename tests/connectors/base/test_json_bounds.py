"""``parse_json``: depth and number sizes are bounded before the parser runs, and every
problem is a ``SkippableRecordError`` with a reason (never RecursionError or ValueError)."""

from __future__ import annotations

import pytest

from connectors.base.normalize import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS, parse_json
from schemas.errors import SkippableRecordError


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_nesting_up_to_the_bound_parses_and_one_more_is_refused() -> None:
    assert parse_json(_nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(SkippableRecordError, match=f"more than {MAX_JSON_DEPTH} levels"):
        parse_json(_nested(MAX_JSON_DEPTH + 1))


def test_brackets_and_digits_inside_strings_do_not_count() -> None:
    text = '"' + "[{" * 500 + '\\"' + "9" * 500 + '"'
    assert parse_json(('{"t": ' + text + ', "n": [' + "[]," * 300 + "1]}").encode())["t"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b"[" * 100_000, "levels deep", id="only-openers"),
        pytest.param(b"[" * 1000 + b"]" * 1000, "levels deep", id="deep-array"),
        pytest.param(b'{"n": ' + b"9" * (MAX_NUMBER_DIGITS + 1) + b"}", "digits", id="long-int"),
        pytest.param(b'{"n": 0.' + b"1" * 5000 + b"}", "digits", id="long-fraction"),
        pytest.param(b'{"n": 1e400}', "not JSON", id="float-overflow"),
        pytest.param(b"\xff{}", "not JSON", id="invalid-utf8"),
        pytest.param(b'{"a": [1, 2}', "not JSON", id="unbalanced"),
    ],
)
def test_out_of_bounds_or_broken_bodies_are_skippable_with_a_reason(body: bytes, says: str) -> None:
    with pytest.raises(SkippableRecordError, match=says):
        parse_json(body)


def test_a_number_at_the_bound_parses() -> None:
    assert parse_json(b"[" + b"9" * MAX_NUMBER_DIGITS + b"]") == [int("9" * MAX_NUMBER_DIGITS)]
