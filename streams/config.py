"""The sync rules and mappings: one YAML file, validated once at start-up.

Every flow can be switched off; every map is explicit (a status or priority that has no entry
is not synced, and ``config check`` names it), so nothing is translated by guesswork. The
file never holds secrets: credentials live in the connector settings (environment or files).

A minimal file (see ``config/sync.example.yaml`` for every option)::

    connectors: {intercom: ic, zendesk: zd}
    flows:
      escalate_to_zendesk: {enabled: true, when: {tags_any: [escalate]}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.errors import ConfigurationError
from schemas.models import CaseStatus, Priority

__all__ = [
    "ConflictPolicy",
    "EscalationRule",
    "FieldDirection",
    "SyncConfig",
    "TagTaxonomy",
    "load_sync_config",
]

FieldDirection = Literal["both", "intercom_to_zendesk", "zendesk_to_intercom", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationRule(_Strict):
    """When an Intercom conversation becomes a Zendesk ticket: any listed tag, or a priority
    conversation, or a customer on one of the plans (any condition is enough)."""

    tags_any: list[str] = Field(default_factory=lambda: ["escalate"])
    priority_at_least: Priority | None = None
    plans_any: list[str] = Field(default_factory=list)


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


class TagTaxonomy(_Strict):
    """Canonical tag → its name on each platform. Tags outside the taxonomy follow
    ``unmapped``: ``pass`` (same name on both sides) or ``drop`` (stay where they are)."""

    tags: dict[str, dict[Literal["intercom", "zendesk"], str]] = Field(default_factory=dict)
    unmapped: Literal["pass", "drop"] = "pass"
    #: tags that steer the sync itself (``escalate``) are never copied across
    never_sync: list[str] = Field(default_factory=lambda: ["escalate"])


class CustomField(_Strict):
    """A Zendesk ticket field filled from the canonical contact or case."""

    zendesk_field_id: int
    #: where the value comes from: ``contact.plan``, ``contact.company``,
    #: ``contact.custom_attributes.<name>`` or ``case.custom_fields.<name>``
    source: str
    allowed: list[str] | None = None

    @model_validator(mode="after")
    def _known_source(self) -> CustomField:
        prefixes = (
            "contact.plan",
            "contact.company",
            "contact.custom_attributes.",
            "case.custom_fields.",
        )
        if not self.source.startswith(prefixes):
            raise ValueError(f"source {self.source!r} must start with one of {', '.join(prefixes)}")
        return self


class Routing(_Strict):
    """Zendesk group for new tickets: by the customer's plan, else by Intercom segment tag."""

    by_plan: dict[str, int] = Field(default_factory=dict)
    by_tag: dict[str, int] = Field(default_factory=dict)
    default_group_id: int | None = None


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


class SyncConfig(_Strict):
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
    #: the resolution at which change times are compared: the coarsest timestamp precision
    #: (Intercom: whole seconds). Changes in the same slot are simultaneous and
    #: ``conflicts.precedence`` decides; otherwise the later source time wins.
    clock_tolerance_seconds: float = Field(default=1.0, ge=0)
    #: unused since own writes are recognised by the convergence registers (writes in flight
    #: and settled); still accepted so existing rules files load
    echo_window_seconds: int = Field(default=3600, ge=60)
    dedupe_window_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    #: the longest thread carried into a new ticket (older parts are summarised by count)
    max_thread_messages: int = Field(default=200, ge=1, le=5000)


def load_sync_config(path: Path | str) -> SyncConfig:
    """Read and validate the YAML file; every problem becomes one readable error."""
    path = Path(path)
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the sync config {path}: {exc.strerror}; set DESKSTREAM_SYNC_CONFIG "
            "to the rules file (see config/sync.example.yaml)"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return SyncConfig.model_validate(document or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()[:8]
        )
        raise ConfigurationError(f"{path}: {problems}; fix the file and start again") from None
