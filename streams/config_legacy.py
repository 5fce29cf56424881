"""The first rules format (``version: 1``), a pair: Intercom ⇄ Zendesk with direction-named
keys (``escalate_to_zendesk``, ``status_map.intercom_to_zendesk``, ``zendesk_field_id``).

Still read: ``to_routes`` turns it into the routes of ``streams.config`` (two routes, one per
direction), meaning exactly what it meant before; ``deskstream config check`` shows the
equivalent new file (``legacy_notice``). Configuration, so it names platforms.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.models import CaseStatus, Priority
from streams.config import CreateRule, Routing, TagTaxonomy, Windows, check_value_source

__all__ = ["LegacySyncConfig", "is_legacy", "legacy_notice", "to_routes"]

FieldDirection = Literal["both", "intercom_to_zendesk", "zendesk_to_intercom", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: when an Intercom conversation becomes a Zendesk ticket (``always`` is accepted too)
EscalationRule = CreateRule


class _Flow(_Strict):
    enabled: bool = True


class EscalateFlow(_Flow):
    when: EscalationRule = Field(default_factory=EscalationRule)


class StatusFlow(_Flow):
    #: may a change on one side reopen a record the other side has solved?
    #: never: only forward (open → solved); both: reopen both ways;
    #: zendesk_reopens_intercom / intercom_reopens_zendesk: one direction only
    reopen: Literal["never", "both", "zendesk_reopens_intercom", "intercom_reopens_zendesk"] = (
        "intercom_reopens_zendesk"
    )


class AcknowledgeFlow(_Flow):
    #: placeholders: {name}, {ticket_id}, {subject}
    message: str = (
        "Hi {name}, we have received your request \u201c{subject}\u201d (ticket #{ticket_id}). "
        "A member of our team will get back to you here."
    )


class Flows(_Strict):
    escalate_to_zendesk: EscalateFlow = Field(default_factory=EscalateFlow)
    replies_to_intercom: _Flow = Field(default_factory=_Flow)
    status_round_trip: StatusFlow = Field(default_factory=StatusFlow)
    profile_sync: _Flow = Field(default_factory=_Flow)
    acknowledge_new_tickets: AcknowledgeFlow = Field(default_factory=AcknowledgeFlow)
    tags_both_ways: _Flow = Field(default_factory=_Flow)


def _default_status_to_zendesk() -> dict[CaseStatus, CaseStatus]:
    return {
        CaseStatus.NEW: CaseStatus.NEW,
        CaseStatus.OPEN: CaseStatus.OPEN,
        CaseStatus.PENDING: CaseStatus.PENDING,
        CaseStatus.CLOSED: CaseStatus.SOLVED,
    }


def _default_status_to_intercom() -> dict[CaseStatus, CaseStatus]:
    return {
        CaseStatus.NEW: CaseStatus.OPEN,
        CaseStatus.OPEN: CaseStatus.OPEN,
        CaseStatus.PENDING: CaseStatus.OPEN,
        CaseStatus.ON_HOLD: CaseStatus.OPEN,
        CaseStatus.SOLVED: CaseStatus.CLOSED,
        CaseStatus.CLOSED: CaseStatus.CLOSED,
    }


class StatusMap(_Strict):
    intercom_to_zendesk: dict[CaseStatus, CaseStatus] = Field(
        default_factory=_default_status_to_zendesk
    )
    zendesk_to_intercom: dict[CaseStatus, CaseStatus] = Field(
        default_factory=_default_status_to_intercom
    )


class PriorityMap(_Strict):
    intercom_to_zendesk: dict[Priority, Priority] = Field(
        default_factory=lambda: {Priority.HIGH: Priority.HIGH, Priority.NORMAL: Priority.NORMAL}
    )
    zendesk_to_intercom: dict[Priority, Priority] = Field(
        default_factory=lambda: {
            Priority.URGENT: Priority.HIGH,
            Priority.HIGH: Priority.HIGH,
            Priority.NORMAL: Priority.NORMAL,
            Priority.LOW: Priority.NORMAL,
        }
    )


class CustomField(_Strict):
    """A Zendesk ticket field filled from the canonical contact or case."""

    zendesk_field_id: int
    #: where the value comes from: ``contact.plan``, ``contact.company``,
    #: ``contact.custom_attributes.<name>`` or ``case.custom_fields.<name>``
    source: str
    allowed: list[str] | None = None

    @model_validator(mode="after")
    def _known_source(self) -> CustomField:
        check_value_source(self.source)
        return self


def _default_precedence() -> list[Literal["intercom", "zendesk"]]:
    return ["zendesk", "intercom"]


class ConflictPolicy(_Strict):
    """Per field: the owner's value wins; else the last writer by source time, compared at
    ``clock_tolerance_seconds`` resolution, and inside the same slot the first platform of
    ``precedence`` (a deterministic tie-break: every worker and every arrival order elects
    the same winner)."""

    owners: dict[str, Literal["intercom", "zendesk"]] = Field(default_factory=dict)
    precedence: list[Literal["intercom", "zendesk"]] = Field(
        default_factory=_default_precedence, min_length=1
    )


class Connectors(_Strict):
    intercom: str
    zendesk: str


def _default_profile_fields() -> dict[str, FieldDirection]:
    return {
        "name": "both",
        "phone": "both",
        "company": "intercom_to_zendesk",
        "plan": "intercom_to_zendesk",
    }


class LegacySyncConfig(Windows):
    version: Literal[1] = 1
    connectors: Connectors
    flows: Flows = Field(default_factory=Flows)
    status_map: StatusMap = Field(default_factory=StatusMap)
    priority_map: PriorityMap = Field(default_factory=PriorityMap)
    taxonomy: TagTaxonomy = Field(default_factory=TagTaxonomy)
    custom_fields: dict[str, CustomField] = Field(default_factory=dict)
    routing: Routing = Field(default_factory=Routing)
    #: contact profile fields and the direction they flow: name, phone, company, plan,
    #: custom_attributes.<name>
    profile_fields: dict[str, FieldDirection] = Field(default_factory=_default_profile_fields)
    conflicts: ConflictPolicy = Field(default_factory=ConflictPolicy)


def is_legacy(data: Any) -> bool:
    """A first-format document: no ``routes``, and not declared ``version: 2``."""
    return isinstance(data, dict) and "routes" not in data and data.get("version", 1) == 1


def to_routes(data: dict[str, Any]) -> dict[str, Any]:
    """The ``version: 2`` document meaning what ``data`` (``version: 1``) means."""
    old = LegacySyncConfig.model_validate(data)
    flows = old.flows
    reopen = flows.status_round_trip.reopen

    def status(table: dict[CaseStatus, CaseStatus], reopens: bool) -> dict[str, Any]:
        return {"enabled": flows.status_round_trip.enabled, "map": table, "reopen": reopens}

    escalate = flows.escalate_to_zendesk
    to_zendesk = {
        "from": "intercom",
        "to": "zendesk",
        "create": {
            "enabled": escalate.enabled,
            "when": escalate.when.model_dump(),
            "custom_fields": {
                name: {"field": str(spec.zendesk_field_id), "source": spec.source}
                | ({"allowed": spec.allowed} if spec.allowed is not None else {})
                for name, spec in old.custom_fields.items()
            },
            "routing": old.routing.model_dump(),
        },
        # Every Intercom message reaches the ticket: public ones as public comments, notes
        # as internal notes.
        "messages": {"enabled": True, "visibility": "all"},
        "status": status(
            old.status_map.intercom_to_zendesk, reopen in ("both", "intercom_reopens_zendesk")
        ),
        "priority": {"map": old.priority_map.intercom_to_zendesk},
        "tags": {"enabled": flows.tags_both_ways.enabled},
        "profile": {"enabled": flows.profile_sync.enabled},
    }
    to_intercom = {
        "from": "zendesk",
        "to": "intercom",
        # Only agents' public replies go back to the customer; internal notes never do.
        "messages": {
            "enabled": flows.replies_to_intercom.enabled,
            "visibility": "public",
            "authors": ["agent"],
        },
        "acknowledge": flows.acknowledge_new_tickets.model_dump(),
        "status": status(
            old.status_map.zendesk_to_intercom, reopen in ("both", "zendesk_reopens_intercom")
        ),
        "priority": {"map": old.priority_map.zendesk_to_intercom},
        "tags": {"enabled": flows.tags_both_ways.enabled},
        "profile": {"enabled": flows.profile_sync.enabled},
    }
    return {
        "version": 2,
        "connectors": {"intercom": old.connectors.intercom, "zendesk": old.connectors.zendesk},
        "routes": [to_zendesk, to_intercom],
        "taxonomy": old.taxonomy.model_dump(),
        "profile_fields": old.profile_fields,
        "conflicts": old.conflicts.model_dump(),
        "clock_tolerance_seconds": old.clock_tolerance_seconds,
        "echo_window_seconds": old.echo_window_seconds,
        "dedupe_window_seconds": old.dedupe_window_seconds,
        "max_thread_messages": old.max_thread_messages,
    }


def legacy_notice(data: dict[str, Any]) -> str:
    """What ``config check`` says about a first-format file: the same rules as routes."""

    return (
        "this file uses the first rules format (version 1, an Intercom ⇄ Zendesk pair); it "
        "is still read as the two routes below. Replace it with this equivalent to add a "
        "third platform:\n" + yaml.safe_dump(_plain(to_routes(data)), sort_keys=False)
    )


def _plain(value: Any) -> Any:
    """``value`` with enums as their values, for YAML."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)
