"""Contact profiles: name, phone, company, plan and custom attributes converge per field
through the registers of ``streams.converge``, like a case's fields.

A field flows per ``profile_fields``, along the routes whose ``profile`` flow is on: ``both``
(last writer wins, ties by precedence), or from one platform, which makes it the field's
owner (an edit elsewhere is set back to the owner's value; ``conflicts.owners`` can name an
owner for a ``both`` field too). Absent values never erase present ones: a contact without a
phone says nothing about the phone.

A contact missing on a platform is created there only after a hold for a match by email
(``streams.flows.holds``): never on a first miss.

Where a platform's contact notifications do not say which attributes changed (every present
one is listed: ``PlatformAdapter.contact_events_name_fields``), a differing copy is the
change, at the notification's time; where events name their field, only those compete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base.commands import OPTION_UNHEARD, encode_list
from connectors.base.source import is_reconciliation
from schemas.models import ActorKind, CommandAction, Contact, EntityType
from streams.config import SyncConfig, field_owner
from streams.converge import Competition, Policy, Register
from streams.flows import Decisions, FlowContext, holds
from streams.flows.case_fields import Drift, explain_drift
from streams.mapping import adapter, path, profile_value

__all__ = ["on_contact", "reconcile_contact"]

_PROFILE = "profile:"


@dataclass(frozen=True, slots=True)
class _ProfileField:
    config: SyncConfig
    name: str

    @property
    def direction(self) -> str:
        return self.config.profile_fields.get(self.name, "none")

    def flows_to(self, source: str, target: str) -> bool:
        direction = self.direction
        if direction == "none":
            return False
        if "_to_" in direction and not direction.endswith(f"_to_{target}"):
            return False  # one direction, to another platform
        return path(self.config, source, target, lambda route: route.profile.enabled) is not None

    def project(self, value: Any, source: str, target: str) -> Any:
        return value if self.flows_to(source, target) else None

    def policy(self) -> Policy:
        config = self.config
        owner = config.conflicts.owners.get(self.name) or field_owner(self.direction)
        return Policy(config.clock_tolerance_seconds, config.precedence, owner)


def on_contact(ctx: FlowContext) -> None:
    contact = ctx.event.data
    side = ctx.side
    if not isinstance(contact, Contact):
        ctx.note("sync", "ignored", f"{side} deleted the contact; its mirror is kept")
        return
    ctx.state.records[side] = contact.model_dump(mode="json")
    if not any(route.profile.enabled for route in ctx.config.routes_from(side)):
        ctx.note("rules", "flow_off", f"no route from {side} carries profiles (profile flow)")
        return
    _observe(ctx, contact)
    reconcile_contact(ctx)


def _observe(ctx: FlowContext, contact: Contact) -> None:
    side, config, state = ctx.side, ctx.config, ctx.state
    changed = set(ctx.event.changed_fields)
    actor = ctx.event.source.actor
    # A reconciliation's re-read names no field: a value differing from what the link last
    # heard of this contact is a change made since (a lost webhook, an edit while paused),
    # even where the platform's events name their field; it is audited ``reconciled``.
    reconciling = is_reconciliation(ctx.event.source.event_type)
    drifted: list[Drift] = []
    profile = [raw for key, raw in state.registers.items() if key.startswith(_PROFILE)]
    reported = [s[0] for raw in profile if (s := Register(raw).seen(side))]
    changed_since = max(reported, default=None)
    for name in sorted(config.profile_fields):
        value = profile_value(contact, name)
        spec = _ProfileField(config, name)
        if value is None or spec.direction == "none":
            continue  # absent values never erase present ones
        register = Register(state.registers.setdefault(_PROFILE + name, {}))
        heard = register.seen(side)
        if reconciling and heard is not None and heard[1] != value and ctx.source_time > heard[0]:
            drifted.append(Drift(name, heard[1], value, heard[0]))
        outcome = register.observe(
            side,
            value,
            ctx.source_time,
            noted=state.steps,
            # Some platforms name the field their contact event is about; others list every
            # present attribute, so there a differing copy is the change.
            explicit=adapter(side).contact_events_name_fields and name in changed,
            ours=actor.kind is ActorKind.INTEGRATION,
            views_are_changes=reconciling or not adapter(side).contact_events_name_fields,
            changed_since=changed_since,
            policy=spec.policy(),
            agrees=register.agreement(spec.project),
        )
        _audit(ctx, name, side, value, outcome)
    explain_drift(ctx, side, drifted, lambda name: _ProfileField(config, name).policy().owner)


def _audit(ctx: FlowContext, name: str, side: str, value: Any, outcome: Competition) -> None:
    if outcome.outcome == "not_owner":
        owner = _ProfileField(ctx.config, name).policy().owner
        ctx.note(
            "sync",
            "not_owner",
            f"{name} flows from {owner}; {side}'s change is set back to {owner}'s value",
            field=name,
        )
    elif outcome.outcome in ("lost", "won") and (outcome.rival or outcome.superseded):
        loser, winner = (
            ((side, value), outcome.rival)
            if outcome.outcome == "lost"
            else (outcome.superseded, (side, value))
        )
        if loser is None or winner is None:
            return
        ctx.note(
            "conflict",
            "conflict_lost",
            f"{loser[0]}'s {name} ({loser[1]!r}) lost to {winner[0]}'s ({winner[1]!r}): last "
            f"writer wins, ties by platform precedence; {loser[0]} is set to the winner",
            field=name,
            loser=f"{loser[0]}:{loser[1]}",
            winner=f"{winner[0]}:{winner[1]}",
        )


def reconcile_contact(ctx: Decisions) -> None:
    """Write the winning profile values to each linked contact that does not hold them."""
    state, config = ctx.state, ctx.config
    sides = config.platforms
    updates: dict[str, dict[str, Any]] = {}
    registers: dict[str, list[tuple[Register, Any]]] = {}
    sources: dict[str, str] = {}
    # Fields whose value on the target the link never heard: a sink that knows what its
    # own create set there may leave them out (a new requester's name, issue 11).
    unheard: dict[str, list[str]] = {}
    for key in sorted(state.registers):
        name = key.removeprefix(_PROFILE)
        if not key.startswith(_PROFILE) or name not in config.profile_fields:
            continue
        register = Register(state.registers[key])
        spec = _ProfileField(config, name)
        for want in register.wants(
            sides, spec.project, register.agreement(spec.project), ctx.stalled(name)
        ):
            target = want.side
            winner = register.winner
            sources.setdefault(target, winner[1] if winner else target)
            updates.setdefault(target, {})[name] = want.value
            registers.setdefault(target, []).append((register, want.value))
            if register.seen(target) is None:
                unheard.setdefault(target, []).append(name)
    for target, fields in sorted(updates.items()):
        linked = target in state.members
        if not linked and not adapter(target).contacts_found_by_link_id:
            continue  # no link id to find the contact by there: only a known one is written
        identity = _identity(config, state.records, target)
        if identity is None:
            continue
        source = sources[target]
        reason = f"{source} profile: {', '.join(sorted(fields))} to the winning values"
        if not linked:
            verdict = holds.gate(ctx, target, holds.hold_seconds(config, source, target))
            if verdict in (holds.Gate.HELD, holds.Gate.WAIT):
                continue  # nothing tracked: the registers still want it when the hold ends
            if verdict is holds.Gate.RELEASED:
                reason = holds.release_reason(ctx, target)
        command = ctx.emit(
            target,
            EntityType.CONTACT,
            CommandAction.UPDATE if linked else CommandAction.UPSERT,
            _profile(identity, fields),
            source=source,
            changed_fields=sorted(fields),
            contact=identity,
            options={OPTION_UNHEARD: encode_list(unheard[target])} if target in unheard else None,
            part=f"converge:{target}",
            reason=reason,
        )
        if not linked and target in state.holds:
            holds.released(ctx, target, command.command_id)
        for register, value in registers[target]:
            register.track(target, value, command.command_id, step=state.steps)


def _identity(
    config: SyncConfig, records: dict[str, dict[str, Any]], target: str
) -> Contact | None:
    """Who the contact is, for finding or creating it on ``target``: another platform's
    record first (an upsert's lookup; in the connectors' order), else the target's own."""
    for side in [p for p in config.platforms if p != target] + [target]:
        raw = records.get(side)
        if raw is not None:
            return Contact.model_validate(raw)
    return None


def _profile(contact: Contact, updates: dict[str, Any]) -> Contact:
    """The contact as the target should hold it: identity fields plus the changed fields."""
    custom = {
        k.split(".", 1)[1]: v for k, v in updates.items() if k.startswith("custom_attributes.")
    }
    plain = {k: v for k, v in updates.items() if not k.startswith("custom_attributes.")}
    return Contact(
        emails=contact.emails,
        external_id=contact.external_id,
        custom_attributes=custom,
        **plain,
    )
