"""Translate canonical values between Intercom's and Zendesk's vocabularies, per the config.

Everything here is a pure function of the config and the canonical values. A value with no
mapping is returned as None (not synced) rather than guessed; the caller audits it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from schemas.models import Case, CaseStatus, Contact, Priority
from streams.config import SyncConfig

__all__ = [
    "Side",
    "custom_fields_for_zendesk",
    "map_priority",
    "map_status",
    "map_tags",
    "other_side",
    "profile_value",
    "route_group",
]

Side = Literal["intercom", "zendesk"]


def other_side(side: Side) -> Side:
    return "zendesk" if side == "intercom" else "intercom"


def map_status(config: SyncConfig, source: Side, status: CaseStatus) -> CaseStatus | None:
    table = (
        config.status_map.intercom_to_zendesk
        if source == "intercom"
        else config.status_map.zendesk_to_intercom
    )
    return table.get(status)


def map_priority(config: SyncConfig, source: Side, priority: Priority | None) -> Priority | None:
    if priority is None:
        return None
    table = (
        config.priority_map.intercom_to_zendesk
        if source == "intercom"
        else config.priority_map.zendesk_to_intercom
    )
    return table.get(priority)


def map_tags(config: SyncConfig, source: Side, tags: Iterable[str]) -> set[str]:
    """The source's tags, spelled the other side's way; steering tags never cross over."""
    taxonomy = config.taxonomy
    target = other_side(source)
    by_source_name = {
        names[source]: names.get(target) for names in taxonomy.tags.values() if source in names
    }
    mapped: set[str] = set()
    for tag in tags:
        if tag in taxonomy.never_sync:
            continue
        if tag in by_source_name:
            name = by_source_name[tag]
            if name:
                mapped.add(name)
        elif taxonomy.unmapped == "pass":
            mapped.add(tag)
    return mapped


def profile_value(contact: Contact, field: str) -> Any:
    """A profile field of the canonical contact: name, phone, company, plan or
    custom_attributes.<name>."""
    if field.startswith("custom_attributes."):
        return contact.custom_attributes.get(field.split(".", 1)[1])
    return getattr(contact, field, None)


def _source_value(source: str, case: Case, contact: Contact | None) -> Any:
    if source.startswith("case.custom_fields."):
        return case.custom_fields.get(source.split(".", 2)[2])
    if contact is None:
        return None
    return profile_value(contact, source.removeprefix("contact."))


def custom_fields_for_zendesk(
    config: SyncConfig, case: Case, contact: Contact | None
) -> tuple[dict[str, Any], list[str]]:
    """Zendesk custom field values keyed by field id, and the values refused (not allowed)."""
    values: dict[str, Any] = {}
    refused: list[str] = []
    for name, spec in config.custom_fields.items():
        value = _source_value(spec.source, case, contact)
        if value is None:
            continue
        if spec.allowed is not None and str(value) not in spec.allowed:
            refused.append(f"{name}={value!r} (allowed: {', '.join(spec.allowed)})")
            continue
        values[str(spec.zendesk_field_id)] = value
    return values, refused


def route_group(
    config: SyncConfig, contact: Contact | None, intercom_tags: Iterable[str]
) -> int | None:
    """The Zendesk group for a new ticket: by plan first, then by segment tag, then default."""
    routing = config.routing
    if contact is not None and contact.plan and contact.plan in routing.by_plan:
        return routing.by_plan[contact.plan]
    for tag in sorted(intercom_tags):
        if tag in routing.by_tag:
            return routing.by_tag[tag]
    return routing.default_group_id
