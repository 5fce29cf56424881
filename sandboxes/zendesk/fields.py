"""Custom ticket field values: validation by field type and the tags they drive.

Drop-down (``tagger``) and multiselect values are option tags, and Zendesk mirrors them into
the ticket's ``tags``; a ticked checkbox adds its own tag. A drop-down value outside the
field's options is silently dropped by Zendesk (the old value stays); the sandbox does the
same unless the account is configured to reject it with 422.
"""

from __future__ import annotations

import logging
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.zendesk.config import CustomFieldSpec, ZendeskSandboxConfig
from sandboxes.zendesk.errors import ZendeskError, record_invalid

__all__ = ["apply_field_tags", "coerce_custom_fields"]

logger = logging.getLogger(__name__)

_TYPE_NAMES = {
    "text": "FieldText",
    "textarea": "FieldTextarea",
    "checkbox": "FieldCheckbox",
    "date": "FieldDate",
    "integer": "FieldInteger",
    "decimal": "FieldDecimal",
    "regexp": "FieldRegexp",
    "tagger": "FieldTagger",
    "multiselect": "FieldMultiselect",
}


def _invalid(spec: CustomFieldSpec, value: Any) -> ZendeskError:
    return record_invalid(
        "base",
        f"{spec.title}: {value!r} is not a valid value",
        "InvalidValue",
        ticket_field_id=spec.id,
        ticket_field_type=_TYPE_NAMES[spec.type],
    )


class _Dropped(Exception):
    """The value is ignored, as Zendesk ignores an unknown drop-down tag."""


def _coerce(spec: CustomFieldSpec, value: Any, policy: str) -> Any:
    if value is None or value == "":
        return None
    kind = spec.type
    if kind in ("text", "textarea"):
        return str(value)
    if kind == "checkbox":
        return value in (True, 1, "1", "true", "True", "yes")
    if kind == "integer":
        try:
            return str(int(str(value).strip()))
        except ValueError:
            raise _invalid(spec, value) from None
    if kind == "decimal":
        try:
            return str(Decimal(str(value).strip()))
        except InvalidOperation:
            raise _invalid(spec, value) from None
    if kind == "date":
        try:
            return date.fromisoformat(str(value)[:10]).isoformat()
        except ValueError:
            raise _invalid(spec, value) from None
    if kind == "regexp":
        pattern = spec.regexp_for_validation or ".*"
        if not re.fullmatch(pattern, str(value)):
            raise _invalid(spec, value)
        return str(value)
    allowed = [o.value for o in spec.options]
    if kind == "tagger":
        if str(value) in allowed:
            return str(value)
        if policy == "reject":
            raise _invalid(spec, value)
        raise _Dropped
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if str(v) not in allowed]
    if bad and policy == "reject":
        raise _invalid(spec, bad)
    kept = [str(v) for v in values if str(v) in allowed]
    return list(dict.fromkeys(kept)) or None


def coerce_custom_fields(
    entries: Any, current: dict[int, Any], config: ZendeskSandboxConfig
) -> dict[int, Any]:
    """The custom field values after applying ``entries`` (``[{"id", "value"}]`` or a
    ``{id: value}`` map) to ``current``. Unknown field ids are ignored like Zendesk does."""
    specs = {spec.id: spec for spec in config.custom_fields}
    if isinstance(entries, dict):
        pairs = list(entries.items())
    elif isinstance(entries, list):
        pairs = [(e.get("id"), e.get("value")) for e in entries if isinstance(e, dict)]
    else:
        return dict(current)
    result = dict(current)
    for raw_id, value in pairs:
        try:
            spec = specs[int(raw_id)]
        except (KeyError, TypeError, ValueError):
            continue
        try:
            coerced = _coerce(spec, value, config.invalid_option_policy)
        except _Dropped:
            logger.info(
                "zendesk sandbox dropped invalid option field_id=%s value=%r", spec.id, value
            )
            continue
        if coerced is None or coerced is False:
            result.pop(spec.id, None)
        else:
            result[spec.id] = coerced
    return result


def _field_tags(spec: CustomFieldSpec, value: Any) -> set[str]:
    if value is None:
        return set()
    if spec.type == "tagger":
        return {str(value)}
    if spec.type == "multiselect":
        return {str(v) for v in value}
    if spec.type == "checkbox" and value is True and spec.tag:
        return {spec.tag}
    return set()


def apply_field_tags(
    tags: list[str], before: dict[int, Any], after: dict[int, Any], config: ZendeskSandboxConfig
) -> list[str]:
    """``tags`` with the tags of changed drop-down, multiselect and checkbox values swapped."""
    result = list(tags)
    for spec in config.custom_fields:
        old, new = _field_tags(spec, before.get(spec.id)), _field_tags(spec, after.get(spec.id))
        if old == new:
            continue
        result = [t for t in result if t not in old - new]
        result += [t for t in sorted(new - old) if t not in result]
    return result
