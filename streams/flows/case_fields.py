"""A linked case's synced fields converge: status, priority, the owner (``assignee``, an
email: ``streams.owners``), and each tag on its own.

Every report of a linked record (a person's change, a copy of the record in an unrelated
notification, the echo of our own write) is an observation for the registers of
``streams.converge``; after each one, ``reconcile`` writes the winning values wherever a
linked record disagrees. Tags are a set merged per tag: ``tag:<canonical name>`` holds
whether the tag is on each record, so a person's add is never undone by an unrelated edit on
the other side, and the writes are deltas (``tags_added`` / ``tags_removed``).

The canonical name of a tag is its taxonomy key, or for tags outside the taxonomy its own
name when ``unmapped: pass`` (``drop``: it stays where it is); steering tags
(``never_sync``) have no register.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.base.commands import (
    OPTION_EXPECT_PREFIX,
    OPTION_TAGS_ADDED,
    OPTION_TAGS_REMOVED,
    encode_list,
)
from connectors.base.source import is_reconciliation
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    EntityType,
    Priority,
)
from streams.config import SyncConfig
from streams.converge import Competition, Policy, Register
from streams.flows import Decisions, FlowContext
from streams.mapping import (
    adapter,
    map_assignee,
    map_priority,
    map_status,
    path,
    reopen_allowed,
    syncs_assignee,
    tag_key,
    tag_name,
)
from streams.owners import OWNER, owner_value, remember_seen_owner

__all__ = [
    "Drift",
    "created_owner",
    "explain_drift",
    "observe_case",
    "owner_actor",
    "reconcile_case",
    "track_create",
]

_TAG = "tag:"
_DONE = {CaseStatus.SOLVED.value, CaseStatus.CLOSED.value}


# -- vocabulary --------------------------------------------------------------------------------
def _case_values(config: SyncConfig, side: str, case: Case) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": case.status.value,
        "priority": case.priority.value if case.priority else None,
    }
    for name in case.tags:
        key = tag_key(config, side, name)
        if key is not None:
            values[_TAG + key] = True
    owner = owner_value(case.assignee)
    if owner is not None and syncs_assignee(config, side):
        values[OWNER] = owner  # an unresolved owner says nothing (``_unresolved``)
    return values


@dataclass(frozen=True, slots=True)
class _Field:
    """How one register's values cross between platforms."""

    config: SyncConfig
    name: str

    def project(self, value: Any, source: str, target: str) -> Any:
        if self.name.startswith(_TAG):
            if not adapter(target).can_write("tags"):
                return None
            if path(self.config, source, target, lambda route: route.tags.enabled) is None:
                return None
            return value if tag_name(self.config, target, self.name[len(_TAG) :]) else None
        if value is None or not adapter(target).can_write(self.name):
            return None
        if self.name == OWNER:
            return map_assignee(self.config, source, target, value)
        if self.name == "status":
            status = map_status(self.config, source, target, CaseStatus(value))
            return status.value if status else None
        priority = map_priority(self.config, source, target, Priority(value))
        return priority.value if priority else None

    def policy(self) -> Policy:
        config = self.config
        owner = None if self.name.startswith(_TAG) else config.conflicts.owners.get(self.name)
        return Policy(config.clock_tolerance_seconds, config.precedence, owner)


def _register(registers: dict[str, dict[str, Any]], name: str) -> Register:
    return Register(registers.setdefault(name, {}))


# -- observation -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Drift:
    """A field a reconciliation found different from what the link last heard of it."""

    field: str
    believed: Any
    found: Any
    #: when the link last heard of the field on this record (source time)
    heard_at: float


def observe_case(ctx: FlowContext, case: Case, *, ours: bool) -> list[Drift]:
    """Record what this report of ``ctx.side``'s record says, field by field; a person's
    change competes for its field, and the loser of a conflict is audited.

    A reconciliation's re-read (``is_reconciliation``) names no field, and every field that
    differs from what the link last heard of this record is taken as a change made since
    then (no event reported it), even on a platform that reports each change of it
    explicitly; those fields are returned, for the audit."""
    side, config, state = ctx.side, ctx.config, ctx.state
    reconciling = is_reconciliation(ctx.event.source.event_type)
    drifted: list[Drift] = []
    changed = set(ctx.event.changed_fields)
    values = _case_values(config, side, case)
    remember_seen_owner(state, side, case.assignee)
    if owner_value(case.assignee) is None and syncs_assignee(config, side):
        _unresolved(ctx, case, explicit=OWNER in changed and not ours)
    # Tags this record had and no longer has: absent now (a removal, or an older copy).
    for name, raw in state.registers.items():
        if name.startswith(_TAG) and name not in values:
            seen = Register(raw).seen(side)
            if seen is not None and seen[1]:
                values[name] = False
    named_tags = {f.removeprefix("tags.") for f in changed if f.startswith("tags.")}
    for tag in named_tags:  # a named tag that is absent was removed (its add may come later)
        key = tag_key(config, side, tag)
        if key is not None:
            values.setdefault(_TAG + key, False)
    at = ctx.source_time
    reported = [s[0] for raw in state.registers.values() if (s := Register(raw).seen(side))]
    changed_since = max(reported, default=None)
    actor = ctx.event.source.actor
    version = ctx.event.source.source_version
    sequence = int(version) if version and version.isdigit() else None
    person = actor.kind in (ActorKind.AGENT, ActorKind.CUSTOMER) and actor.id is not None
    for name, value in sorted(values.items()):
        if name.startswith(_TAG):
            if "tags" in changed and named_tags:
                names = {n for n in named_tags if tag_key(config, side, n) == name[len(_TAG) :]}
                explicit = bool(names)
            else:
                explicit = "tags" in changed
            if (
                not value
                and not explicit
                and Register(state.registers.get(name, {})).seen(side) is None
            ):
                continue  # never there, still not there
        else:
            explicit = name in changed
        register = _register(state.registers, name)
        spec = _Field(config, name)
        field_name = "tags" if name.startswith(_TAG) else name
        heard = register.seen(side)
        if reconciling and heard is not None and heard[1] != value and ctx.source_time > heard[0]:
            drifted.append(Drift(name, heard[1], value, heard[0]))
        outcome = register.observe(
            side,
            value,
            at,
            noted=state.steps,
            explicit=explicit,
            ours=ours,
            person=person,
            views_are_changes=reconciling
            or field_name not in adapter(side).fields_reported_explicitly,
            sequence=sequence,
            changed_since=changed_since,
            policy=spec.policy(),
            agrees=register.agreement(spec.project),
        )
        _audit(ctx, name, side, value, outcome)
    return drifted


def explain_drift(
    ctx: Decisions,
    side: str,
    drifted: list[Drift],
    owner_of: Callable[[str], str | None] | None = None,
) -> None:
    """One ``reconciled`` audit record: what drifted on ``side`` and why, where it can tell
    (``owner_of`` a field: ``conflicts.owners`` unless told)."""
    owner_of = owner_of or ctx.config.conflicts.owners.get
    for drift in drifted:
        owner = None if drift.field.startswith(_TAG) else owner_of(drift.field)
        was, now = _label(drift.field, drift.believed), _label(drift.field, drift.found)
        if owner is not None and owner != side:
            why = f"a manual change on {side} to a field {owner} owns: set back to {owner}'s value"
            cause = "manual_change_in_owned_field"
        else:
            why = (
                f"no event reported this change: a webhook {side} did not deliver, or an edit "
                "made while Deskstream was not receiving; it competes as a change made since"
            )
            cause = "missed_change"
        ctx.note(
            "sync",
            "reconciled",
            f"{side} holds {now}, the link last heard {was}: {why}; repaired through the "
            "normal planner path",
            field=drift.field if not drift.field.startswith(_TAG) else "tags",
            side=side,
            believed=drift.believed,
            found=drift.found,
            cause=cause,
        )


def _unresolved(ctx: FlowContext, case: Case, *, explicit: bool) -> None:
    """The report names its owner by an id whose email could not be read (the platform's
    agent directory failed, or the id is no agent with an email): it says nothing about the
    owner. A person's assignment is decided again once the lookup may answer (after a
    failed lookup, when the connector's lookups are no longer quiet: ``app.agents.owners``)."""
    assert case.assignee is not None
    noun = adapter(ctx.side).name
    again = "; decided again once the lookup may answer" if explicit else ""
    ctx.note(
        "sync",
        "assignee_unresolved",
        f"{noun} names the owner {case.assignee.id}, whose email could not be read (was "
        f"{noun} down or rate limited then, as the worker's log says? is the user still an "
        f"agent with an email in {noun}, and may the connector read users?): the owner is "
        f"not synced from this report{again}",
        field=OWNER,
    )
    if explicit:
        ctx.retry_in = 1.0


def _label(name: str, value: Any) -> str:
    if name.startswith(_TAG):
        return f"tag {name[len(_TAG) :]} {'on' if value else 'off'}"
    return f"{name} {value}"


def _lost(
    ctx: FlowContext, name: str, loser: tuple[str, Any], winner: tuple[str, Any], why: str
) -> None:
    ctx.note(
        "conflict",
        "conflict_lost",
        f"{loser[0]}'s change ({_label(name, loser[1])}) {why} {winner[0]}'s "
        f"({_label(name, winner[1])}): last writer wins, ties by platform precedence; "
        f"{loser[0]} is set to the winner",
        field=name if not name.startswith(_TAG) else "tags",
        loser=f"{loser[0]}:{loser[1]}",
        winner=f"{winner[0]}:{winner[1]}",
    )


def _audit(ctx: FlowContext, name: str, side: str, value: Any, outcome: Competition) -> None:
    field = name if not name.startswith(_TAG) else "tags"
    if outcome.outcome == "lost" and outcome.rival is not None:
        _lost(ctx, name, (side, value), outcome.rival, "lost to")
    elif outcome.outcome == "won" and outcome.superseded is not None:
        _lost(ctx, name, outcome.superseded, (side, value), "crossed the later")
    elif outcome.outcome == "not_owner":
        ctx.note(
            "sync",
            "not_owner",
            f"{name} is owned by {ctx.config.conflicts.owners.get(name)}; {side}'s change is "
            "set back to the owner's value",
            field=field,
        )
    elif outcome.outcome == "stale":
        ctx.note(
            "sync",
            "stale",
            f"{side} reported a newer {field} already; this older report is not a change",
            field=field,
        )


# -- reconcile ---------------------------------------------------------------------------------
@dataclass
class _Write:
    fields: dict[str, Any]
    added: set[str]
    removed: set[str]
    expect: dict[str, str]
    registers: list[tuple[Register, Any]]
    reasserts: list[str]
    #: the platform whose change the first field's value is (the write's attribution)
    source: str = ""


def reconcile_case(ctx: Decisions) -> None:
    """Write the winning values to every linked record that does not hold them yet."""
    state, config = ctx.state, ctx.config
    sides = sorted({*state.members, *state.creating} & set(config.connectors))
    if len(sides) < 2:
        return
    writes: dict[str, _Write] = {}
    for name in sorted(state.registers):
        register = Register(state.registers[name])
        spec = _Field(config, name)
        stalled = ctx.stalled("tags" if name.startswith(_TAG) else name)
        for want in register.wants(sides, spec.project, register.agreement(spec.project), stalled):
            winner = register.winner
            assert winner is not None
            if name == "status" and not _status_may(ctx, register, want.side, want.value):
                continue
            write = writes.setdefault(want.side, _Write({}, set(), set(), {}, [], [], winner[1]))
            if name.startswith(_TAG):
                tag = tag_name(config, want.side, name[len(_TAG) :])
                assert tag is not None  # project() returned None otherwise
                (write.added if want.value else write.removed).add(tag)
            else:
                write.fields[name] = want.value
                if want.expect:  # nothing known: no expectation, a plain write
                    write.expect[name] = ",".join("" if v is None else str(v) for v in want.expect)
            write.registers.append((register, want.value))
            if want.reassert:
                write.reasserts.append(name)
    for target, write in sorted(writes.items()):
        _emit(ctx, target, write)


def _status_may(ctx: Decisions, register: Register, target: str, value: Any) -> bool:
    """The reopen rule: may the winner reopen ``target``'s solved record?"""
    seen, pending = register.seen(target), register.pending(target)
    winner = register.winner
    assert winner is not None
    holds = pending[0] if pending is not None else (seen[1] if seen is not None else None)
    reopening = holds in _DONE and value not in _DONE
    if not reopening or reopen_allowed(ctx.config, winner[1], target):
        return True
    held = register.raw.setdefault("held", [])
    if target not in held:  # said once per winner, not on every event
        held.append(target)
        ctx.note(
            "rules",
            "reopen_refused",
            f"the routes' reopen rule (status.reopen from {winner[1]} to {target}) keeps the "
            f"{target} {adapter(target).case_noun} {holds}",
            field="status",
        )
    return False


def _emit(ctx: Decisions, target: str, write: _Write) -> None:
    state = ctx.state
    base = Case.model_validate(
        state.records.get(target) or {"status": write.fields.get("status", "open")}
    )
    update: dict[str, Any] = {}
    if "status" in write.fields:
        update["status"] = CaseStatus(write.fields["status"])
    if "priority" in write.fields:
        update["priority"] = Priority(write.fields["priority"])
    if OWNER in write.fields:
        update[OWNER] = owner_actor(write.fields[OWNER])
    changed = sorted(write.fields) + (["tags"] if write.added or write.removed else [])
    options = {f"{OPTION_EXPECT_PREFIX}{k}": v for k, v in write.expect.items()}
    if write.added:
        options[OPTION_TAGS_ADDED] = encode_list(write.added)
    if write.removed:
        options[OPTION_TAGS_REMOVED] = encode_list(write.removed)
    summary = ", ".join(
        [f"{k}={v}" for k, v in sorted(write.fields.items())]
        + [f"+{t}" for t in sorted(write.added)]
        + [f"-{t}" for t in sorted(write.removed)]
    )
    why = (
        f"re-asserts the winner ({', '.join(write.reasserts)}): {target} reported a value "
        "our earlier write or a crossed change left there"
        if write.reasserts
        else f"brings {target} to the winning values"
    )
    command = ctx.emit(
        target,
        EntityType.CASE,
        CommandAction.UPDATE,
        base.model_copy(update=update),
        source=write.source,
        changed_fields=changed,
        options=options,
        part=f"converge:{target}",
        reason=f"{summary}: {why}",
    )
    for register, value in write.registers:
        register.track(target, value, command.command_id, step=state.steps)


def owner_actor(value: str) -> Actor | None:
    """The owner a command carries for the register's ``value`` (None: nobody)."""
    return Actor(kind=ActorKind.AGENT, email=value) if value else None


def created_owner(ctx: Decisions, target: str) -> str | None:
    """The owner a new record on ``target`` gets: the winning owner spelled for ``target``
    (None: no owner to write, or nobody, which a new record is anyway)."""
    raw = ctx.state.registers.get(OWNER)
    if raw is None or (winner := Register(raw).winner) is None:
        return None
    value = _Field(ctx.config, OWNER).project(winner[2], winner[1], target)
    return value or None


def track_create(ctx: Decisions, target: str, command_id: str) -> None:
    """A create carries every winning value to ``target``: each register waits for it."""
    for name in sorted(ctx.state.registers):
        register = Register(ctx.state.registers[name])
        spec = _Field(ctx.config, name)
        for want in register.wants([target], spec.project, register.agreement(spec.project)):
            register.track(target, want.value, command_id, step=ctx.state.steps)
