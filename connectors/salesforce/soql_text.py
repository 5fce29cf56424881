"""Writing values into SOQL safely, and reading REST's dateTime values back.

SOQL text is built here and nowhere else, from checked pieces only: API names
(``[A-Za-z][A-Za-z0-9_]*``, one relationship hop for fields), record ids (15 or 18 letters
and digits), dateTime literals and escaped string literals, so nothing read from a record can
change the shape of a query.

Sources: "Date Formats and Date Literals in WHERE" (SOQL and SOSL Reference,
https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-dateformats.html):
dateTime literals are unquoted ``YYYY-MM-DDThh:mm:ssZ``, whole seconds; "Valid Date and
DateTime Formats" (REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_valid_date_formats.htm):
REST answers ``yyyy-MM-ddTHH:mm:ss.SSS+HHMM``; "Quoted String Escape Sequences" (same reference,
https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-quotedstringescapes.html):
``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f``, ``\\"``, ``\\'``, ``\\\\``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from schemas.errors import FatalAPIError

__all__ = [
    "api_name",
    "datetime_literal",
    "field_path",
    "id_literal",
    "parse_datetime",
    "string_literal",
    "whole_second",
]

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


def api_name(name: str) -> str:
    """``name`` if it is an object or field API name; ValueError otherwise (a config bug)."""
    if not _API_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a Salesforce API name (letters, digits, underscores); fix the "
            "polling configuration"
        )
    return name


def field_path(name: str) -> str:
    """``name`` if it is a field API name or one parent-relationship hop
    (``Parent.Deskstream_Link_Id__c``, "Relationship Queries" in the SOQL reference);
    ValueError otherwise."""
    for part in name.split(".", 1):
        api_name(part)
    return name


def id_literal(record_id: str) -> str:
    """A quoted id for SOQL; :class:`FatalAPIError` for anything that is not an id."""
    if not _ID.match(record_id):
        raise FatalAPIError(
            f"Salesforce answered a record whose Id {record_id[:40]!r} is not an id; the "
            "poll stops here: check the query's object and the org"
        )
    return f"'{record_id}'"


def whole_second(value: datetime) -> datetime:
    """``value`` in UTC without its fraction: SOQL compares dateTimes at whole seconds."""
    return value.astimezone(UTC).replace(microsecond=0)


def datetime_literal(value: datetime) -> str:
    """``2025-03-01T09:00:00Z`` for the second ``value`` falls in."""
    return whole_second(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: object, *, field: str) -> datetime:
    """A REST dateTime (``2025-03-01T09:00:00.000+0000``) as an aware UTC datetime."""
    if isinstance(text, str):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise FatalAPIError(
        f"Salesforce answered {field}={str(text)[:40]!r}, not a dateTime with a zone; the "
        "poll stops here: check that the query selects the field and the API version"
    )


#: "Quoted String Escape Sequences" (SOQL and SOSL Reference): backslash escapes inside quotes
_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def string_literal(value: str) -> str:
    """``value`` as a quoted SOQL string literal, every special character escaped, so a
    value read from a record (an email, a link id) cannot change the query's shape."""
    return "'" + "".join(_STRING_ESCAPES.get(char, char) for char in value) + "'"
