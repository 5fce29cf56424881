"""Translate canonical values between platforms' vocabularies, along the configured routes.

A value travels from one linked record to another along the shortest chain of routes whose
flow for it is on (``path``); each hop applies its route's map, and the target's adapter
says whether the platform can hold the result. Everything here is a pure function of the
config and the canonical values. A value with no mapping is returned as None (not synced)
rather than guessed; the caller audits it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from connectors.base.adapter import PlatformAdapter
from connectors.base.registry import adapter_for
from schemas.models import Case, CaseStatus, Contact, Priority
from streams.config import CustomField, Route, Routing, SyncConfig

__all__ = [
    "adapter",
    "custom_fields_for",
    "map_assignee",
    "map_priority",
    "map_status",
    "map_tags",
    "path",
    "profile_value",
    "reachable",
    "reopen_allowed",
    "route_group",
    "syncs_assignee",
    "tag_key",
    "tag_name",
]

#: which of a route's flows carries a value
Carries = Callable[[Route], bool]


@cache
def adapter(platform: str) -> PlatformAdapter:
    return adapter_for(platform)


def path(config: SyncConfig, source: str, target: str, carries: Carries) -> list[Route] | None:
    """The shortest chain of routes from ``source`` to ``target`` whose every hop
    ``carries`` the value (ties: the routes' order in the file); None when there is none."""
    if source == target:
        return []
    previous: dict[str, Route] = {}
    queue = deque([source])
    while queue:
        here = queue.popleft()
        for route in config.routes_from(here):
            if route.target in previous or route.target == source or not carries(route):
                continue
            previous[route.target] = route
            if route.target == target:
                hops = [route]
                while hops[0].source != source:
                    hops.insert(0, previous[hops[0].source])
                return hops
            queue.append(route.target)
    return None


def reachable(config: SyncConfig, source: str, carries: Carries) -> list[str]:
    """Every platform a value from ``source`` reaches, nearest first."""
    found: list[str] = []
    queue = deque([source])
    while queue:
        here = queue.popleft()
        for route in config.routes_from(here):
            if route.target != source and route.target not in found and carries(route):
                found.append(route.target)
                queue.append(route.target)
    return found


def _along(config: SyncConfig, source: str, target: str, value: Any, flow: str) -> Any:
    """``value`` through the ``flow`` map (``status`` or ``priority``) of every hop from
    ``source`` to ``target``; None when no chain carries it or a hop has no entry."""
    hops = path(config, source, target, lambda route: getattr(route, flow).enabled)
    for route in hops or []:
        value = getattr(route, flow).map.get(value) if value is not None else None
    return value if hops is not None else None


def map_status(
    config: SyncConfig, source: str, target: str, status: CaseStatus
) -> CaseStatus | None:
    value: CaseStatus | None = _along(config, source, target, status, "status")
    return value if value is not None and adapter(target).holds_status(value) else None


def map_priority(
    config: SyncConfig, source: str, target: str, priority: Priority | None
) -> Priority | None:
    value: Priority | None = _along(config, source, target, priority, "priority")
    return value if value is not None and value in adapter(target).priorities else None


def map_assignee(config: SyncConfig, source: str, target: str, email: str) -> str | None:
    """The owner ``email`` of ``source``'s record as ``target``'s owner (``""``: nobody), through
    every hop's ``assignee.map``; None when no chain of routes carries owners there."""
    if not adapter(target).can_write("assignee"):
        return None
    hops = path(config, source, target, lambda route: route.assignee.enabled)
    for route in hops or []:
        email = route.assignee.map.get(email, email) if email else email
    return email if hops is not None else None


def syncs_assignee(config: SyncConfig, platform: str) -> bool:
    """Does any route carry owners from or to ``platform``?"""
    return any(
        route.assignee.enabled and platform in (route.source, route.target)
        for route in config.routes
    )


def reopen_allowed(config: SyncConfig, source: str, target: str) -> bool:
    """May a status from ``source`` reopen ``target``'s solved record? Every hop must allow
    it. The winner's own record (a write of ours in flight would solve it first) reopens only
    when every route that carries statuses to or from it reopens."""
    if source == target:
        touching = [r for r in config.routes if target in (r.source, r.target) and r.status.enabled]
        return bool(touching) and all(route.status.reopen for route in touching)
    hops = path(config, source, target, lambda r: r.status.enabled)
    return hops is not None and all(route.status.reopen for route in hops)


def tag_key(config: SyncConfig, platform: str, name: str) -> str | None:
    """The canonical name of ``platform``'s tag ``name``; None when the tag does not sync."""
    taxonomy = config.taxonomy
    if name in taxonomy.never_sync:
        return None
    for key, names in taxonomy.tags.items():
        if names.get(platform) == name:
            return key
    return name if taxonomy.unmapped == "pass" else None


def tag_name(config: SyncConfig, platform: str, key: str) -> str | None:
    """The canonical tag ``key`` spelled on ``platform``; None when it has no name there."""
    names = config.taxonomy.tags.get(key)
    if names is not None:
        return names.get(platform)
    if config.taxonomy.unmapped == "pass" and key not in config.taxonomy.never_sync:
        return key
    return None


def map_tags(config: SyncConfig, source: str, target: str, tags: Iterable[str]) -> set[str]:
    """The source's tags, spelled the target's way; steering tags never cross over."""
    if not adapter(target).can_write("tags"):
        return set()
    mapped: set[str] = set()
    for tag in tags:
        key = tag_key(config, source, tag)
        name = tag_name(config, target, key) if key is not None else None
        if name:
            mapped.add(name)
    return mapped


def profile_value(contact: Contact, field: str) -> Any:
    """A profile field of the canonical contact: name, phone, company, plan or
    custom_attributes.<name>."""
    if field.startswith("custom_attributes."):
        return contact.custom_attributes.get(field.split(".", 1)[1])
    return getattr(contact, field, None)


def _source_value(spec: CustomField, case: Case, contact: Contact | None) -> Any:
    if spec.source.startswith("case.custom_fields."):
        return case.custom_fields.get(spec.source.split(".", 2)[2])
    if contact is None:
        return None
    return profile_value(contact, spec.source.removeprefix("contact."))


def custom_fields_for(
    route: Route, case: Case, contact: Contact | None
) -> tuple[dict[str, Any], list[str]]:
    """The target's custom field values for a new record, keyed by the target's field id,
    and the values refused (not allowed)."""
    values: dict[str, Any] = {}
    refused: list[str] = []
    for name, spec in route.create.custom_fields.items():
        value = _source_value(spec, case, contact)
        if value is None:
            continue
        if spec.allowed is not None and str(value) not in spec.allowed:
            refused.append(f"{name}={value!r} (allowed: {', '.join(spec.allowed)})")
            continue
        values[spec.field] = value
    return values, refused


def route_group(
    routing: Routing, contact: Contact | None, source_tags: Iterable[str]
) -> int | None:
    """The group of a new record: by plan first, then by a tag of the source record, then the
    default."""
    if contact is not None and contact.plan and contact.plan in routing.by_plan:
        return routing.by_plan[contact.plan]
    for tag in sorted(source_tags):
        if tag in routing.by_tag:
            return routing.by_tag[tag]
    return routing.default_group_id
