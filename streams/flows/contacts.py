"""Contact profiles: name, phone, company, plan and custom attributes converge per field
through the registers of ``streams.converge``, like a case's fields.

A field flows per ``profile_fields``: ``both`` (last writer wins, ties by precedence), or one
direction, which makes its source the field's owner (an edit on the other side is set back to
the source's value; ``conflicts.owners`` can name an owner for a ``both`` field too). Absent
values never erase present ones: a contact without a phone says nothing about the phone.

Intercom's contact notifications do not say which attributes changed (every present one is
listed), so a differing copy is the change, at the notification's time; Zendesk's user events
name their field, so only those compete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.models import ActorKind, CommandAction, Contact, EntityType
from streams.config import SyncConfig
from streams.converge import Competition, Policy, Register
from streams.flows import Decisions, FlowContext
from streams.mapping import Side, other_side, profile_value

__all__ = ["on_contact", "reconcile_contact"]

_PROFILE = "profile:"
_SIDES: tuple[Side, Side] = ("intercom", "zendesk")


@dataclass(frozen=True, slots=True)
class _ProfileField:
    config: SyncConfig
    name: str

    @property
    def direction(self) -> str:
        return self.config.profile_fields.get(self.name, "none")

    def flows_to(self, target: str) -> bool:
        return self.direction in ("both", f"{other_side(_side(target))}_to_{target}")

    def project(self, value: Any, source: str, target: str) -> Any:
        return value if self.flows_to(target) else None

    def policy(self) -> Policy:
        owner: str | None = self.config.conflicts.owners.get(self.name)
        if owner is None and self.direction != "both":
            owner = self.direction.split("_to_")[0]
        return Policy(self.config.clock_tolerance_seconds, self.config.conflicts.precedence, owner)


def on_contact(ctx: FlowContext) -> None:
    contact = ctx.event.data
    side = ctx.side
    if not isinstance(contact, Contact):
        ctx.note("sync", "ignored", f"{side} deleted the contact; its mirror is kept")
        return
    ctx.state.records[side] = contact.model_dump(mode="json")
    if not ctx.config.flows.profile_sync.enabled:
        ctx.note("rules", "flow_off", "profile_sync is switched off")
        return
    _observe(ctx, contact)
    reconcile_contact(ctx)


def _observe(ctx: FlowContext, contact: Contact) -> None:
    side, config, state = ctx.side, ctx.config, ctx.state
    changed = set(ctx.event.changed_fields)
    actor = ctx.event.source.actor
    profile = [raw for key, raw in state.registers.items() if key.startswith(_PROFILE)]
    reported = [s[0] for raw in profile if (s := Register(raw).seen(side))]
    changed_since = max(reported, default=None)
    for name in sorted(config.profile_fields):
        value = profile_value(contact, name)
        spec = _ProfileField(config, name)
        if value is None or spec.direction == "none":
            continue  # absent values never erase present ones
        register = Register(state.registers.setdefault(_PROFILE + name, {}))
        outcome = register.observe(
            side,
            value,
            ctx.source_time,
            noted=state.steps,
            # Zendesk names the field its user event is about; Intercom lists every present
            # attribute, so there a differing copy is the change.
            explicit=side == "zendesk" and name in changed,
            ours=actor.kind is ActorKind.INTEGRATION,
            views_are_changes=side == "intercom",
            changed_since=changed_since,
            policy=spec.policy(),
            agrees=register.agreement(spec.project),
        )
        _audit(ctx, name, side, value, outcome)


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
    updates: dict[Side, dict[str, Any]] = {}
    registers: dict[Side, list[tuple[Register, Any]]] = {}
    for key in sorted(state.registers):
        name = key.removeprefix(_PROFILE)
        if not key.startswith(_PROFILE) or name not in config.profile_fields:
            continue
        register = Register(state.registers[key])
        spec = _ProfileField(config, name)
        for want in register.wants(
            _SIDES, spec.project, register.agreement(spec.project), ctx.stalled(name)
        ):
            target = _side(want.side)
            updates.setdefault(target, {})[name] = want.value
            registers.setdefault(target, []).append((register, want.value))
    for target, fields in sorted(updates.items()):
        if target == "intercom" and "intercom" not in state.members:
            # Intercom contacts carry no link id to be found by: only a known one is written.
            continue
        identity = _identity(state.records, target)
        if identity is None:
            continue
        source = other_side(target)
        command = ctx.emit(
            target,
            EntityType.CONTACT,
            CommandAction.UPDATE if target in state.members else CommandAction.UPSERT,
            _profile(identity, fields),
            source=source,
            changed_fields=sorted(fields),
            contact=identity,
            part=f"converge:{target}",
            reason=f"{source} profile: {', '.join(sorted(fields))} to the winning values",
        )
        for register, value in registers[target]:
            register.track(target, value, command.command_id, step=state.steps)


def _side(platform: str) -> Side:
    return "intercom" if platform == "intercom" else "zendesk"


def _identity(records: dict[str, dict[str, Any]], target: Side) -> Contact | None:
    """Who the contact is, for finding or creating it on ``target``: the other side's record
    first (an upsert's lookup), else the target's own."""
    for side in (other_side(target), target):
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
