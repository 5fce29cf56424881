"""Turning JSON values into field values, with Salesforce's own error codes and messages."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandboxes.salesforce.ids import normalize_id
from sandboxes.salesforce.objects import FieldSpec, SObjectSpec

__all__ = ["DmlError", "coerce_value", "format_datetime", "parse_datetime"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class DmlError(Exception):
    """One record-level error, rendered as the REST or sObject Collections error object."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)
    http_status: int = 400

    def __post_init__(self) -> None:
        super().__init__(f"{self.status_code}: {self.message}")

    def as_rest(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.status_code}
        if self.fields:
            body["fields"] = self.fields
        return body

    def as_collection(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}


def format_datetime(value: datetime, *, zulu: bool = False) -> str:
    """REST renders ``2024-01-15T10:20:30.000+0000``; change events over CometD use ``Z``."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return text + ("Z" if zulu else "+0000")


def parse_datetime(text: str) -> datetime:
    cleaned = text.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", cleaned):
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _json_error(spec: FieldSpec, value: Any, expected: str) -> DmlError:
    kind = type(value).__name__.upper()
    return DmlError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {expected} from {kind} value {value!r} "
        f"for field {spec.name}",
    )


def coerce_value(sobject: SObjectSpec, spec: FieldSpec, value: Any) -> Any:
    """The stored value for ``value`` written to ``spec``, or a :class:`DmlError`."""
    if value is None or (value == "" and spec.type not in ("string", "textarea")):
        if not spec.nillable and spec.type != "boolean":
            raise _missing(spec)
        return None
    kind = spec.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _json_error(spec, value, "boolean")
    if kind in ("int", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _json_error(spec, value, kind)
        return int(value) if kind == "int" else float(value)
    if kind in ("datetime", "date"):
        if not isinstance(value, str):
            raise _json_error(spec, value, kind)
        try:
            return parse_datetime(value)
        except ValueError:
            raise DmlError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{spec.label}: value not of required type: {value}",
                [spec.name],
            ) from None
    if kind == "base64":
        if not isinstance(value, str):
            raise _json_error(spec, value, "base64")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _json_error(spec, value[:40], "base64") from None
    if kind == "reference":
        if not isinstance(value, str):
            raise _json_error(spec, value, "id")
        record_id = normalize_id(value)
        if record_id is None:
            raise DmlError(
                "MALFORMED_ID", f"{spec.label}: id value of incorrect type: {value}", [spec.name]
            )
        return record_id
    # Text-like: string, textarea, email, phone, picklist, url.
    if isinstance(value, bool | dict | list):
        raise _json_error(spec, value, "string")
    text = str(value)
    if text == "":
        if spec.required or not spec.nillable:
            raise _missing(spec)
        return None
    size = len(text.encode("utf-8")) if spec.length_in_bytes else len(text)
    if spec.length and size > spec.length:
        raise DmlError(
            "STRING_TOO_LONG",
            f"{spec.label}: data value too large: {text[:30]}... (max length={spec.length})",
            [spec.name],
        )
    if kind == "email" and not _EMAIL.match(text):
        raise DmlError(
            "INVALID_EMAIL_ADDRESS", f"{spec.label}: invalid email address: {text}", [spec.name]
        )
    if kind == "picklist" and spec.restricted and text not in spec.picklist:
        raise DmlError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{spec.label}: bad value for restricted picklist field: {text}",
            [spec.name],
        )
    return text


def _missing(spec: FieldSpec) -> DmlError:
    return DmlError(
        "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{spec.name}]", [spec.name]
    )
