"""Intercom's search query language for ``POST /contacts/search`` and
``POST /conversations/search``, with the cursor pagination both use.

A query is a single filter ``{"field","operator","value"}`` or a group
``{"operator":"AND"|"OR","value":[...]}``; at most 2 levels of nested groups and 15 filters
per group. The two endpoints differ in date handling, as documented in the 2.14 spec:

* contacts match dates by calendar day in the workspace time zone: ``=`` is the whole day,
  ``>`` starts at the next day, ``<`` ends before the day; ``!=``, ``>=``, ``<=``, ``IN``,
  ``NIN`` are refused on dates;
* conversations compare full timestamps, and their ``>`` / ``<`` are inclusive.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

from sandboxes.intercom.errors import IntercomAPIError

__all__ = [
    "CONTACT_FIELDS",
    "CONVERSATION_FIELDS",
    "Page",
    "SearchSpec",
    "compile_query",
    "paginate",
]

FieldType = Literal[
    "string",
    "integer",
    "date",
    "boolean",
    "list",
]
Predicate = Callable[[Callable[[str], Any]], bool]

_STRING_OPS = {"=", "!=", "IN", "NIN", "~", "!~", "^", "$"}
_INTEGER_OPS = {"=", "!=", "IN", "NIN", "<", "<=", ">", ">="}
_BOOLEAN_OPS = {"=", "!=", "IN", "NIN"}
_LIST_OPS = {"=", "!=", "IN", "NIN"}
_MAX_DEPTH = 2
_MAX_FILTERS = 15

_CONTACT_DATES = [
    "created_at",
    "signed_up_at",
    "updated_at",
    "last_seen_at",
    "last_contacted_at",
    "last_replied_at",
    "last_email_opened_at",
    "last_email_clicked_at",
    "ios_last_seen_at",
    "android_last_seen_at",
]
_CONTACT_STRINGS = [
    "id",
    "role",
    "name",
    "avatar",
    "email",
    "email_domain",
    "phone",
    "external_id",
    "language_override",
    "browser",
    "browser_language",
    "os",
    "location.country",
    "location.region",
    "location.city",
    "ios_app_version",
    "ios_device",
    "ios_app_device",
    "ios_os_version",
    "ios_app_name",
    "ios_sdk_version",
    "android_app_version",
    "android_device",
    "android_app_name",
    "andoid_sdk_version",
    "segment_id",
]

CONTACT_FIELDS: dict[str, FieldType] = {
    **dict.fromkeys(_CONTACT_STRINGS, "string"),
    **dict.fromkeys(_CONTACT_DATES, "date"),
    "owner_id": "integer",
    "unsubscribed_from_emails": "boolean",
    "marked_email_as_spam": "boolean",
    "has_hard_bounced": "boolean",
    "tag_id": "list",
}

_CONVERSATION_STATS_DATES = [
    "first_contact_reply_at",
    "first_assignment_at",
    "first_admin_reply_at",
    "first_close_at",
    "last_assignment_at",
    "last_assignment_admin_reply_at",
    "last_contact_reply_at",
    "last_admin_reply_at",
    "last_close_at",
]
_CONVERSATION_STATS_INTS = [
    "time_to_assignment",
    "time_to_admin_reply",
    "time_to_first_close",
    "time_to_last_close",
    "median_time_to_reply",
    "count_reopens",
    "count_assignments",
    "count_conversation_parts",
]

CONVERSATION_FIELDS: dict[str, FieldType] = {
    "created_at": "date",
    "updated_at": "date",
    "waiting_since": "date",
    "snoozed_until": "date",
    **{f"statistics.{name}": "date" for name in _CONVERSATION_STATS_DATES},
    **{f"statistics.{name}": "integer" for name in _CONVERSATION_STATS_INTS},
    "statistics.last_closed_by_id": "string",
    "conversation_rating.requested_at": "date",
    "conversation_rating.replied_at": "date",
    "conversation_rating.score": "integer",
    "admin_assignee_id": "integer",
    "team_assignee_id": "integer",
    "ai_agent.rating": "integer",
    "open": "boolean",
    "read": "boolean",
    "ai_agent_participated": "boolean",
    **dict.fromkeys(
        [
            "id",
            "source.type",
            "source.id",
            "source.delivered_as",
            "source.subject",
            "source.body",
            "source.author.id",
            "source.author.type",
            "source.author.name",
            "source.author.email",
            "source.url",
            "channel_initiated",
            "state",
            "priority",
        ],
        "string",
    ),
    "contact_ids": "list",
    "teammate_ids": "list",
    "tag_ids": "list",
}


@dataclass(frozen=True)
class SearchSpec:
    """What differs between the two search endpoints."""

    fields: dict[str, FieldType]
    day_granular_dates: bool
    default_per_page: int
    max_per_page: int = 150
    timezone: tzinfo = UTC


def _field_type(spec: SearchSpec, name: str) -> FieldType:
    if name.startswith("custom_attributes.") and len(name) > len("custom_attributes."):
        return "string"
    try:
        return spec.fields[name]
    except KeyError:
        raise IntercomAPIError.invalid(f"{name} is not a searchable field", field=name) from None


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise IntercomAPIError.invalid(f"{name} expects an integer value", field=name)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise IntercomAPIError.invalid(f"{name} expects an integer value", field=name)


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise IntercomAPIError.invalid(f"{name} expects a boolean value", field=name)


def _fold(value: Any) -> str:
    return str(value).casefold()


def _day_start(ts: int, tz: tzinfo) -> int:
    local = datetime.fromtimestamp(ts, tz)
    return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


def _date_filter(spec: SearchSpec, name: str, op: str, value: Any) -> Callable[[Any], bool]:
    if spec.day_granular_dates:
        if op not in {"=", ">", "<"}:
            raise IntercomAPIError.invalid(
                f"The operator {op} is not supported on date field {name}", field=name
            )
        day = _day_start(_as_int(value, name), spec.timezone)
        day_local = datetime.fromtimestamp(day, spec.timezone)
        next_day = int((day_local + timedelta(days=1)).timestamp())
        if op == "=":
            return lambda v: v is not None and day <= v < next_day
        if op == ">":
            return lambda v: v is not None and v >= next_day
        return lambda v: v is not None and v < day
    if op in {"IN", "NIN"}:
        wanted = {_as_int(v, name) for v in _as_list(value, name)}
        return (lambda v: v in wanted) if op == "IN" else (lambda v: v not in wanted)
    ts = _as_int(value, name)
    # Conversation search documents > and < as "greater (or equal)" / "lower (or equal)".
    comparisons: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: v == ts,
        "!=": lambda v: v != ts,
        ">": lambda v: v is not None and v >= ts,
        "<": lambda v: v is not None and v <= ts,
    }
    if op not in comparisons:
        raise IntercomAPIError.invalid(f"The operator {op} is not supported on {name}", field=name)
    return comparisons[op]


def _as_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise IntercomAPIError.invalid(f"{name}: IN and NIN need an array value", field=name)
    return value


def _leaf(spec: SearchSpec, node: dict[str, Any]) -> Predicate:
    name, op, value = node.get("field"), node.get("operator"), node.get("value")
    if not isinstance(name, str) or not isinstance(op, str):
        raise IntercomAPIError.invalid("a filter needs field, operator and value")
    kind = _field_type(spec, name)
    test: Callable[[Any], bool]
    if kind == "date":
        test = _date_filter(spec, name, op, value)
    elif kind == "integer":
        _check_op(op, _INTEGER_OPS, name)
        if op in {"IN", "NIN"}:
            ints = {_as_int(v, name) for v in _as_list(value, name)}
            test = (lambda v: v in ints) if op == "IN" else (lambda v: v not in ints)
        else:
            n = _as_int(value, name)
            test = {
                "=": lambda v: v == n,
                "!=": lambda v: v != n,
                "<": lambda v: v is not None and v < n,
                "<=": lambda v: v is not None and v <= n,
                ">": lambda v: v is not None and v > n,
                ">=": lambda v: v is not None and v >= n,
            }[op]
    elif kind == "boolean":
        _check_op(op, _BOOLEAN_OPS, name)
        if op in {"IN", "NIN"}:
            flags = {_as_bool(v, name) for v in _as_list(value, name)}
            test = (lambda v: v in flags) if op == "IN" else (lambda v: v not in flags)
        else:
            flag = _as_bool(value, name)
            test = (lambda v: v is flag) if op == "=" else (lambda v: v is not flag)
    elif kind == "list":
        _check_op(op, _LIST_OPS, name)
        if op in {"IN", "NIN"}:
            wanted = {str(v) for v in _as_list(value, name)}
            test = (
                (lambda v: bool(wanted & set(v))) if op == "IN" else (lambda v: not wanted & set(v))
            )
        else:
            one = str(value)
            test = (lambda v: one in v) if op == "=" else (lambda v: one not in v)
    else:
        test = _string_test(op, value, name)
    return lambda lookup: test(lookup(name))


def _check_op(op: str, allowed: set[str], name: str) -> None:
    if op not in allowed:
        raise IntercomAPIError.invalid(f"The operator {op} is not supported on {name}", field=name)


def _string_test(op: str, value: Any, name: str) -> Callable[[Any], bool]:
    _check_op(op, _STRING_OPS, name)
    if op in {"IN", "NIN"}:
        options = {_fold(v) for v in _as_list(value, name)}
        if op == "IN":
            return lambda v: v is not None and _fold(v) in options
        return lambda v: v is None or _fold(v) not in options
    if value is None:
        # `= null` finds records without the attribute, `!= null` those with it.
        return (lambda v: v in (None, "")) if op == "=" else (lambda v: v not in (None, ""))
    needle = _fold(value)
    tests: dict[str, Callable[[str], bool]] = {
        "=": lambda s: s == needle,
        "!=": lambda s: s != needle,
        "~": lambda s: needle in s,
        "!~": lambda s: needle not in s,
        "^": lambda s: s.startswith(needle),
        "$": lambda s: s.endswith(needle),
    }
    negative = op in {"!=", "!~"}
    return lambda v: negative if v is None else tests[op](_fold(v))


def compile_query(spec: SearchSpec, query: Any, depth: int = 0) -> Predicate:
    """Turn a query object into a predicate over a field lookup; 400 errors when invalid."""
    if not isinstance(query, dict):
        raise IntercomAPIError.invalid("query must be an object", field="query")
    op = query.get("operator")
    if op in {"AND", "OR"}:
        if depth >= _MAX_DEPTH:
            raise IntercomAPIError.invalid("Search supports a maximum of 2 nested filters")
        children = query.get("value")
        if not isinstance(children, list) or not children:
            raise IntercomAPIError.invalid(f"{op} needs a non-empty array of filters")
        if len(children) > _MAX_FILTERS:
            raise IntercomAPIError.invalid("Search supports a maximum of 15 filters per group")
        predicates = [compile_query(spec, child, depth + 1) for child in children]
        if op == "AND":
            return lambda lookup: all(p(lookup) for p in predicates)
        return lambda lookup: any(p(lookup) for p in predicates)
    return _leaf(spec, query)


@dataclass(frozen=True)
class Page:
    """One page of results plus the ``pages`` object the API returns with it."""

    items: list[Any]
    total_count: int
    pages: dict[str, Any]


def _encode_cursor(created_at: int, seq: int, page: int) -> str:
    raw = json.dumps([created_at * 1000, seq, page], separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, int, int]:
    try:
        created_ms, seq, page = json.loads(base64.b64decode(cursor, validate=True))
        return int(created_ms) // 1000, int(seq), int(page)
    except (ValueError, TypeError, binascii.Error):
        raise IntercomAPIError.invalid(
            "starting_after is not a valid cursor", field="starting_after"
        ) from None


def paginate(
    spec: SearchSpec,
    records: Sequence[Any],
    pagination: Any,
    *,
    key: Callable[[Any], tuple[int, int]],
) -> Page:
    """Keyset pagination over ``records`` (already filtered) ordered by ``key``
    (created_at, creation sequence); the cursor stays valid when records are added."""
    pagination = pagination if isinstance(pagination, dict) else {}
    per_page = pagination.get("per_page", spec.default_per_page)
    if not isinstance(per_page, int) or isinstance(per_page, bool) or per_page < 1:
        raise IntercomAPIError.invalid("per_page must be a positive integer", field="per_page")
    if per_page > spec.max_per_page:
        raise IntercomAPIError.invalid(
            f"per_page must be {spec.max_per_page} or less", field="per_page"
        )
    ordered = sorted(records, key=key)
    page = 1
    cursor = pagination.get("starting_after")
    if cursor:
        if not isinstance(cursor, str):
            raise IntercomAPIError.invalid("starting_after must be a string")
        after_created, after_seq, page = _decode_cursor(cursor)
        ordered = [r for r in ordered if key(r) > (after_created, after_seq)]
    total = len(records)
    items = ordered[:per_page]
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": math.ceil(total / per_page),
    }
    if len(ordered) > per_page:
        last_created, last_seq = key(items[-1])
        pages["next"] = {
            "per_page": per_page,
            "starting_after": _encode_cursor(last_created, last_seq, page + 1),
        }
    return Page(items=items, total_count=total, pages=pages)
