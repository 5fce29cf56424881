"""The sync rules: connectors and the routes between them, one YAML file, validated once at
start-up.

A link joins one record on each of any number of platforms. ``connectors`` names the
platforms that take part (platform → connector id: one account per platform); ``routes`` say
what flows from one to another, each with its own flows and maps. What a change on one record
does to the others follows the routes, hop by hop: with ``a → b`` and ``b → c``, a change on
``a`` reaches ``c`` through ``b``'s maps and rules, and a record created on ``b`` from ``a``
is created on ``c`` in turn when ``b → c`` creates.

Every flow can be switched off; every map is explicit (a status or priority without an
entry is not synced, and ``config check`` names it), so nothing is translated by guesswork.
The file never holds secrets: credentials live in the connector settings.

A minimal file (``config/*.example.yaml`` show every option)::

    version: 2
    connectors: {intercom: ic, zendesk: zd}
    routes:
      - {from: intercom, to: zendesk, create: {enabled: true, when: {tags_any: [escalate]}}}
      - {from: zendesk, to: intercom, messages: {visibility: public, authors: [agent]}}

Files of the first format (``version: 1``, direction-named keys) are still read: see
``streams.config_legacy``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.base.registry import adapter_platforms
from schemas.errors import ConfigurationError
from schemas.models import ActorKind, CaseStatus, Priority

__all__ = [
    "DEFAULT_HOLD_SECONDS",
    "HANDOFF_IN_PLACE",
    "HANDOFF_TARGETS",
    "LIVE_CHAT",
    "AssigneeFlow",
    "ConflictPolicy",
    "CreateRule",
    "CustomField",
    "HandoffConfig",
    "HandoffFlow",
    "ProfileFlow",
    "Route",
    "SyncConfig",
    "TagTaxonomy",
    "Windows",
    "check_value_source",
    "load_sync_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateRule(_Strict):
    """When a record with no linked record on the route's target gets one there: any listed
    tag, a priority at least this high, or a customer on one of the plans (any condition is
    enough); ``always``: every record does."""

    always: bool = False
    tags_any: list[str] = Field(default_factory=lambda: ["escalate"])
    priority_at_least: Priority | None = None
    plans_any: list[str] = Field(default_factory=list)


class CustomField(_Strict):
    """A custom field of the target's new record, filled from the canonical contact or case:
    ``field`` is the target's id for it (a Zendesk ticket field id, a Salesforce API name)."""

    field: str
    #: where the value comes from: ``contact.plan``, ``contact.company``,
    #: ``contact.custom_attributes.<name>`` or ``case.custom_fields.<name>``
    source: str
    allowed: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _id_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("field"), int):
            return {**data, "field": str(data["field"])}
        return data

    @model_validator(mode="after")
    def _known_source(self) -> CustomField:
        check_value_source(self.source)
        return self


def check_value_source(source: str) -> None:
    """A custom field's value comes from the canonical contact or case."""
    prefixes = (
        "contact.plan",
        "contact.company",
        "contact.custom_attributes.",
        "case.custom_fields.",
    )
    if not source.startswith(prefixes):
        raise ValueError(f"source {source!r} must start with one of {', '.join(prefixes)}")


class Routing(_Strict):
    """The group (queue) of a new record on the target: by the customer's plan, else by a tag
    of the source record, else the default."""

    by_plan: dict[str, int] = Field(default_factory=dict)
    by_tag: dict[str, int] = Field(default_factory=dict)
    default_group_id: int | None = None


class _Flow(_Strict):
    enabled: bool = True


#: How long a contact create waits for a match by email (``ProfileFlow.hold_seconds``): the
#: platforms' contact searches are eventually consistent, "up to a few minutes" to index a
#: new user (Zendesk Search API) or contact (Intercom "Contact Creation Delay"), and a
#: person's own create on the target reaches us as a webhook or change event seconds later.
#: Three minutes outlasts both in the common case; a new customer's profile reaching the
#: other platform three minutes later costs nothing (escalations carry their requester
#: themselves and never wait).
DEFAULT_HOLD_SECONDS = 180.0


class ProfileFlow(_Flow):
    """Profile fields of linked contacts flow along this route (``profile_fields`` says
    which). A contact the target does not have yet is created there, but never on a first
    miss: the create is held ``hold_seconds`` for the target's own contact with the same
    email (its event on the way, the target's search index catching up), then looked up by
    email once more and created only when still missing (``streams.flows.holds``); 0
    creates at once."""

    hold_seconds: float = Field(default=DEFAULT_HOLD_SECONDS, ge=0, le=24 * 3600)


class CreateFlow(_Flow):
    """A record on the route's source with no linked record on its target gets one there,
    with its history (the thread), its mapped fields and the custom fields below."""

    enabled: bool = False
    when: CreateRule = Field(default_factory=CreateRule)
    custom_fields: dict[str, CustomField] = Field(default_factory=dict)
    routing: Routing = Field(default_factory=Routing)


class MessageFlow(_Flow):
    """Messages of the source record are appended to the target's: ``all`` of them (internal
    ones as internal notes where the target has them) or only ``public`` ones; only from
    these authors (all when unset)."""

    visibility: Literal["all", "public"] = "all"
    authors: list[ActorKind] | None = None


class AcknowledgeFlow(_Flow):
    """A new record on the source, from a customer the target knows (by email), is
    acknowledged there with this message; a courtesy, not a link."""

    enabled: bool = False
    #: placeholders: {name}, {ticket_id}, {subject}
    message: str = (
        "Hi {name}, we have received your request \u201c{subject}\u201d (ticket #{ticket_id}). "
        "A member of our team will get back to you here."
    )


def _identity_status() -> dict[CaseStatus, CaseStatus]:
    return {status: status for status in CaseStatus}


def _identity_priority() -> dict[Priority, Priority]:
    return {priority: priority for priority in Priority}


class StatusFlow(_Flow):
    #: the source's status → the target's; a status without an entry is not synced
    map: dict[CaseStatus, CaseStatus] = Field(default_factory=_identity_status)
    #: may a change on the source reopen a record the target has solved or closed?
    reopen: bool = False


class PriorityFlow(_Flow):
    map: dict[Priority, Priority] = Field(default_factory=_identity_priority)


class AssigneeFlow(_Flow):
    """The case owner: the agent who owns the source record owns the target's, the same
    person found by email among the target's agents; nobody owning it is synced as nobody.
    ``map`` renames an email on the way (an agent known under another email on the target).
    AI agents and the integration never own a record. Off unless enabled: it reads each
    platform's agents (Zendesk users, Intercom admins, Salesforce users)."""

    enabled: bool = False
    #: source agent email → target agent email (compared in lower case)
    map: dict[str, str] = Field(default_factory=dict)

    @field_validator("map")
    @classmethod
    def _emails(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            if "@" not in source or "@" not in target:
                raise ValueError(f"{source!r}: {target!r} must map an email to an email")
        return {k.strip().lower(): v.strip().lower() for k, v in value.items()}


class Route(_Strict):
    """What flows from the ``from`` platform's record to the ``to`` platform's."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    create: CreateFlow = Field(default_factory=CreateFlow)
    messages: MessageFlow = Field(default_factory=MessageFlow)
    acknowledge: AcknowledgeFlow = Field(default_factory=AcknowledgeFlow)
    status: StatusFlow = Field(default_factory=StatusFlow)
    priority: PriorityFlow = Field(default_factory=PriorityFlow)
    tags: _Flow = Field(default_factory=_Flow)
    assignee: AssigneeFlow = Field(default_factory=AssigneeFlow)
    #: profile fields of linked contacts flow along this route (``profile_fields`` says
    #: which), contacts missing on the target created after a hold
    profile: ProfileFlow = Field(default_factory=ProfileFlow)

    @model_validator(mode="after")
    def _two_platforms(self) -> Route:
        if self.source == self.target:
            raise ValueError(f"a route joins two platforms; this one goes {self.source} → itself")
        return self


#: a Handoff's ``target`` → the platform whose record it creates; ``live_chat`` is served by
#: the live chat bridge, not by the sync stage (``HandoffConfig.platform_for``)
HANDOFF_TARGETS: dict[str, str] = {
    "zendesk_ticket": "zendesk",
    "salesforce_case": "salesforce",
    "intercom_conversation": "intercom",
}
LIVE_CHAT = "live_chat"
#: targets whose record is the handed-off conversation itself (Fin answered in Intercom): it
#: gets the note and the assignment instead of a new record being made
HANDOFF_IN_PLACE = frozenset({"intercom_conversation"})


class HandoffFlow(_Flow):
    """An AI hand-off to this platform: a new record with the context (summary, collected
    fields, transcript) as its first, internal message, the reason in a custom field, the
    group by the customer's segment, the customer resolved by email like any contact."""

    #: the platform's id of the field holding the reason (a Zendesk ticket field id); unset:
    #: the canonical ``ai_handoff_reason`` (the Salesforce sink's ``handoff_reason_field``)
    reason_field: str | None = None
    #: segment → group (queue, team) id on the platform
    groups_by_segment: dict[str, int] = Field(default_factory=dict)
    default_group_id: int | None = None
    #: pending follow-up: the AI side hears of a record pending this long without a human
    #: taking over (``streams.flows.handoff``); 0: never
    follow_up_seconds: float = Field(default=0.0, ge=0, le=30 * 24 * 3600)

    def group_for(self, segment: str | None) -> int | None:
        if segment is not None and segment in self.groups_by_segment:
            return self.groups_by_segment[segment]
        return self.default_group_id


class HandoffConfig(_Strict):
    """Where AI hand-offs go: one flow per target platform, each switchable."""

    #: the target of a hand-off that names none (a key of ``HANDOFF_TARGETS`` or live_chat)
    default_target: str = "zendesk_ticket"
    #: platform → its hand-off flow; a platform not listed takes no hand-offs
    flows: dict[str, HandoffFlow] = Field(default_factory=dict)

    @field_validator("default_target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value != LIVE_CHAT and value not in HANDOFF_TARGETS:
            known = ", ".join([*HANDOFF_TARGETS, LIVE_CHAT])
            raise ValueError(f"{value!r} is not a hand-off target ({known})")
        return value

    def in_place(self, target: str | None) -> bool:
        """Is the hand-off's conversation itself the target's record?"""
        return (target or self.default_target) in HANDOFF_IN_PLACE

    def platform_for(self, target: str | None) -> str | None:
        """The platform a hand-off to ``target`` creates a record on; None: the live chat
        (or an unknown target, which the caller reports)."""
        return HANDOFF_TARGETS.get(target or self.default_target)


class TagTaxonomy(_Strict):
    """Canonical tag → its name on each platform. Tags outside the taxonomy follow
    ``unmapped``: ``pass`` (same name everywhere) or ``drop`` (stay where they are)."""

    tags: dict[str, dict[str, str]] = Field(default_factory=dict)
    unmapped: Literal["pass", "drop"] = "pass"
    #: tags that steer the sync itself (``escalate``) are never copied across
    never_sync: list[str] = Field(default_factory=lambda: ["escalate"])


class ConflictPolicy(_Strict):
    """Per field: the owner's value wins; else the last writer by source time, compared at
    ``clock_tolerance_seconds`` resolution, and inside the same slot the first platform of
    ``precedence`` (a deterministic tie-break: every worker and every arrival order elects
    the same winner)."""

    owners: dict[str, str] = Field(default_factory=dict)
    #: empty: the order of ``connectors``
    precedence: list[str] = Field(default_factory=list)


#: ``both``: every linked contact, last writer wins; ``<platform>_to_<platform>``: one
#: direction (the first platform owns the field); ``from_<platform>``: that platform owns it
#: and it flows everywhere the routes lead; ``none``: not synced
FieldDirection = str


class Windows(_Strict):
    """Times and sizes every rules format shares."""

    #: the resolution at which change times are compared: the coarsest timestamp precision
    #: of the platforms (Intercom: whole seconds). Changes in the same slot are simultaneous
    #: and ``conflicts.precedence`` decides; otherwise the later source time wins.
    clock_tolerance_seconds: float = Field(default=1.0, ge=0)
    #: unused since own writes are recognised by the convergence registers; still accepted
    #: so existing rules files load
    echo_window_seconds: int = Field(default=3600, ge=60)
    dedupe_window_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    #: the longest thread carried into a new record (older parts are summarised by count)
    max_thread_messages: int = Field(default=200, ge=1, le=5000)


class SyncConfig(Windows):
    version: Literal[2] = 2
    #: platform → the connector id (``DESKSTREAM_CONNECTORS__<id>__…``) taking part
    connectors: dict[str, str] = Field(min_length=2)
    routes: list[Route] = Field(min_length=1)
    taxonomy: TagTaxonomy = Field(default_factory=TagTaxonomy)
    #: contact profile fields and how they flow: name, phone, company, plan,
    #: custom_attributes.<name>
    profile_fields: dict[str, FieldDirection] = Field(default_factory=dict)
    conflicts: ConflictPolicy = Field(default_factory=ConflictPolicy)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)

    @model_validator(mode="before")
    @classmethod
    def _first_format(cls, data: Any) -> Any:
        """A ``version: 1`` document becomes its routes (``streams.config_legacy``)."""
        from streams.config_legacy import is_legacy, to_routes

        return to_routes(data) if is_legacy(data) else data

    @model_validator(mode="after")
    def _consistent(self) -> SyncConfig:
        known = adapter_platforms()
        for platform in self.connectors:
            if platform not in known:
                raise ValueError(
                    f"connectors: {platform!r} cannot take part in a sync in this version "
                    f"(platforms: {', '.join(sorted(known))})"
                )
        named = [("conflicts.precedence", p) for p in self.conflicts.precedence]
        named += [("conflicts.owners", p) for p in self.conflicts.owners.values()]
        named += [("handoff.flows", p) for p in self.handoff.flows]
        for index, route in enumerate(self.routes):
            named += [(f"routes.{index}", route.source), (f"routes.{index}", route.target)]
        for where, platform in named:
            if platform not in self.connectors:
                raise ValueError(
                    f"{where}: {platform!r} is not among the connectors "
                    f"({', '.join(self.connectors)}); add it there or correct the name"
                )
        pairs = [(r.source, r.target) for r in self.routes]
        if len(pairs) != len(set(pairs)):
            raise ValueError("two routes join the same platforms in the same direction: merge them")
        for name, direction in self.profile_fields.items():
            if direction in ("both", "none"):
                continue
            owner = _owner_of(direction)
            if owner not in self.connectors:
                raise ValueError(
                    f"profile_fields.{name}: {direction!r} must be both, none, "
                    "from_<platform> or <platform>_to_<platform> with configured platforms"
                )
        return self

    # -- the route graph ------------------------------------------------------------------
    @property
    def platforms(self) -> list[str]:
        return list(self.connectors)

    @property
    def precedence(self) -> list[str]:
        """Who wins a tie: the configured order, then the connectors' order."""
        listed = self.conflicts.precedence
        return listed + [p for p in self.connectors if p not in listed]

    def routes_from(self, source: str) -> Iterator[Route]:
        return (route for route in self.routes if route.source == source)

    def route(self, source: str, target: str) -> Route | None:
        return next((r for r in self.routes if r.source == source and r.target == target), None)


def _owner_of(direction: str) -> str:
    if direction.startswith("from_"):
        return direction.removeprefix("from_")
    return direction.split("_to_")[0]


def field_owner(direction: str) -> str | None:
    """The platform that owns a profile field flowing ``direction`` (None for ``both``)."""
    return None if direction in ("both", "none") else _owner_of(direction)


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
    from streams.config_legacy import LegacySyncConfig, is_legacy

    # A first-format file is validated as such, so its errors name its own keys.
    model: type[BaseModel] = LegacySyncConfig if is_legacy(document) else SyncConfig
    try:
        model.model_validate(document or {})
        return SyncConfig.model_validate(document or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()[:8]
        )
        raise ConfigurationError(f"{path}: {problems}; fix the file and start again") from None
