"""Cases: a record on one platform gets a linked record on another when a route's create rule
says so (an escalated conversation becomes a ticket with its full history, a ticket becomes a
CRM case), and in turn on the platforms the new record's own routes create on (with the
winning owner, when one is known); status, priority, owner and tags then converge over every
linked record; a new record from a customer known
on a route's target can be acknowledged there.
"""

from __future__ import annotations

from connectors.base.commands import (
    OPTION_GROUP_ID,
    thread_key,
)
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Message,
    Priority,
)
from streams.config import Route, SyncConfig
from streams.flows import Decisions, FlowContext
from streams.flows.case_fields import (
    created_owner,
    explain_drift,
    observe_case,
    owner_actor,
    reconcile_case,
    track_create,
)
from streams.mapping import (
    adapter,
    custom_fields_for,
    map_priority,
    map_status,
    map_tags,
    route_group,
)
from streams.state import LinkState

__all__ = [
    "ACK_PENDING",
    "acknowledge",
    "acknowledge_route",
    "create_failed_key",
    "create_from",
    "history_needed",
    "is_acknowledgement",
    "on_case",
    "on_case_echo",
]

#: ``state.mirrors`` key of the acknowledgement sent to a platform: ``ack:<platform>``
_ACK = "ack:"

_PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


def history_needed(config: SyncConfig, state: LinkState) -> bool:
    """May a create still need the origin's thread? While a route could still create a
    record the link does not have (once every one exists, the thread is dropped: the state
    carries no copy of a conversation that is mirrored already)."""
    return state.kind == "case" and any(
        route.create.enabled and route.target not in state.members for route in config.routes
    )


def is_acknowledgement(mirrors: dict[str, str], command_id: str) -> bool:
    """Was ``command_id`` an acknowledgement (a courtesy message, not a linked record)?"""
    return any(k.startswith(_ACK) and v == command_id for k, v in mirrors.items())


def _linked(ctx: Decisions, platform: str) -> bool:
    return platform in ctx.state.members or platform in ctx.state.creating


def on_case(ctx: FlowContext) -> None:
    case = ctx.event.data
    side = ctx.side
    state = ctx.state
    if not isinstance(case, Case):
        ctx.note("sync", "ignored", f"{side} deleted the record; its mirror is left as it is")
        return
    state.records[side] = case.model_dump(mode="json")
    drifted = observe_case(ctx, case, ours=False)
    explain_drift(ctx, side, drifted)
    acted = False
    if any(_linked(ctx, p) for p in ctx.config.platforms if p != side):
        before = len(ctx.commands)
        reconcile_case(ctx)
        if len(ctx.commands) == before and not ctx.audits:
            ctx.note(
                "sync",
                "unchanged",
                f"every linked record already holds the winning values ({side} reported no "
                "change that needs a write)",
            )
        acted = True
    for route in ctx.config.routes_from(side):
        if _linked(ctx, route.target):
            continue
        if route.create.enabled:
            _maybe_create(ctx, route, case)
            acted = True
        elif route.acknowledge.enabled and state.origin == side:
            _maybe_acknowledge(ctx, route, case)
            acted = True
    if not acted:
        ctx.note("sync", "no_action", f"{side} record is not linked to another platform")


def on_case_echo(ctx: FlowContext) -> None:
    """Our own write reported back: what the record now holds. When a person changed the
    field after our write was decided, the record now disagrees with the winner and the
    reconcile writes the winner there once (crossed writes)."""
    case = ctx.event.data
    if not isinstance(case, Case):
        return
    ctx.state.records[ctx.side] = case.model_dump(mode="json")
    observe_case(ctx, case, ours=True)
    if any(_linked(ctx, p) for p in ctx.config.platforms if p != ctx.side):
        reconcile_case(ctx)


# -- creation ------------------------------------------------------------------------------
def _create_reason(ctx: Decisions, route: Route, case: Case, profile: Contact | None) -> str | None:
    rule = route.create.when
    if rule.always:
        return f"every {adapter(route.source).case_noun} gets one"
    tagged = sorted(set(rule.tags_any) & set(case.tags))
    if tagged:
        return f"tagged {', '.join(tagged)}"
    floor = rule.priority_at_least
    if (
        floor
        and case.priority
        and _PRIORITY_ORDER.index(case.priority) >= _PRIORITY_ORDER.index(floor)
    ):
        return f"priority {case.priority.value}"
    plan = profile.plan if profile else None
    if plan and plan in rule.plans_any:
        return f"customer on plan {plan}"
    return None


def _maybe_create(ctx: FlowContext, route: Route, case: Case) -> None:
    reason = _create_reason(ctx, route, case, ctx.profile)
    if reason is None:
        ctx.note("rules", "not_escalated", f"the {route.source} record matches no create rule")
        return
    if not ctx.state.thread:
        # Not one message yet: its webhook is still on the way (they arrive in any order).
        ctx.retry_in = 1.0
        ctx.note("rules", "escalation_waiting", f"{reason}, but no message has arrived yet")
        return
    _create(ctx, route, case, ctx.profile, reason)


def create_from(decisions: Decisions, platform: str) -> None:
    """``platform``'s record just joined the link (our create landed): the routes from it
    create on the platforms not linked yet, from what is known of the case."""
    state = decisions.state
    raw = state.records.get(platform) or (state.records.get(state.origin or "") or None)
    if raw is None:
        return
    case = Case.model_validate(raw)
    for route in decisions.config.routes_from(platform):
        if not route.create.enabled or _linked(decisions, route.target):
            continue
        reason = _create_reason(decisions, route, case, None)
        if reason is not None:
            _create(decisions, route, case, None, f"{reason}, after the {platform} record")


def _create(ctx: Decisions, route: Route, case: Case, profile: Contact | None, reason: str) -> None:
    config, state = ctx.config, ctx.state
    source, target = route.source, route.target
    # The case as it is known: on the route's source, else (a chained create) the origin's.
    known = source if source in state.records else (state.origin or source)
    status = map_status(config, known, target, case.status) or CaseStatus.OPEN
    priority = map_priority(config, known, target, case.priority)
    tags = map_tags(config, known, target, case.tags)
    contact = profile or _contact_from(case.requester)
    custom_fields, refused = custom_fields_for(route, case, contact)
    owner = created_owner(ctx, target)
    record = Case(
        subject=case.subject or _subject_from(ctx, case),
        status=status,
        priority=priority,
        tags=sorted(tags),
        requester=case.requester,
        assignee=owner_actor(owner) if owner else None,
        custom_fields=custom_fields,
        channel=case.channel,
        created_at=case.created_at,
    )
    options: dict[str, str] = {}
    group = route_group(route.create.routing, profile, case.tags)
    if group is not None:
        options[OPTION_GROUP_ID] = str(group)
    # Webhooks arrive in any order: the new record's history is told in the order it happened.
    kept = state.thread[-config.max_thread_messages :]
    ids = state.thread_ids[-len(kept) :] if kept else []
    ordered = sorted(zip(kept, ids, strict=True), key=lambda pair: pair[0]["created_at"])
    thread = [Message.model_validate(m) for m, _ in ordered]
    command = ctx.emit(
        target,
        EntityType.CASE,
        CommandAction.UPSERT,
        record,
        source=source,
        # A create tried again after a failed one may meet the record that one made before
        # it failed: it goes out as possibly executed, so the sink looks before creating
        # (a first create's sink may skip that lookup).
        attempt=2 if create_failed_key(target) in state.mirrors else 1,
        changed_fields=["subject", "status", "priority", "tags", "custom_fields"]
        + (["assignee"] if owner else []),
        thread=thread,
        contact=contact,
        options=options,
        reason=(
            f"a {adapter(target).case_noun} on {target} for the {adapter(source).case_noun} "
            f"on {source}: {reason}, with {len(thread)} message(s) of history"
        ),
    )
    thread_side = state.origin or source
    for index, (_, message_id) in enumerate(ordered):
        state.add_mirror(
            f"{thread_side}:{message_id}", f"pending:{command.command_id}:{thread_key(index)}"
        )
    state.creating.append(target)
    track_create(ctx, target, command.command_id)
    if refused:
        ctx.note(
            "mapping",
            "custom_field_refused",
            "values outside the allowed set were not written: " + "; ".join(refused),
        )


def _contact_from(requester: Actor | None) -> Contact | None:
    if requester is None or not requester.email:
        return None
    return Contact(emails=[requester.email], name=requester.name)


def _subject_from(ctx: Decisions, case: Case) -> str:
    for message in ctx.state.thread:
        text = (message.get("body_text") or "").strip()
        if text:
            return text.splitlines()[0][:120]
    origin = ctx.state.origin
    noun = adapter(origin).case_noun.capitalize() if origin else "Record"
    return f"{noun} {ctx.state.members.get(origin or '', ctx.state.link_id)}"


def create_failed_key(platform: str) -> str:
    """``state.mirrors`` key holding the id of a create on ``platform`` that failed: the record
    may exist all the same (the write landed, its answer was lost), until a create answers."""
    return f"create:failed:{platform}"


# -- acknowledgement ----------------------------------------------------------------------
#: ``state.mirrors`` key holding a record whose acknowledgement waits for the customer's email
ACK_PENDING = "ack:pending"
ACK_RETRY_S = 1.0


def _maybe_acknowledge(ctx: FlowContext, route: Route, case: Case) -> None:
    pending = ACK_PENDING in ctx.state.mirrors
    if ctx.event.op.value != "create" and not pending:
        ctx.note("sync", "no_action", f"{route.source} record not linked to {route.target}")
        return
    acknowledge(ctx, route, subject=case.subject or "", requester=case.requester)


def acknowledge_route(ctx: FlowContext) -> Route | None:
    """The route from this event's platform that acknowledges new records, if any."""
    return next((r for r in ctx.config.routes_from(ctx.side) if r.acknowledge.enabled), None)


def acknowledge(ctx: FlowContext, route: Route, *, subject: str, requester: Actor | None) -> None:
    """Acknowledge a new record on the route's target, once, when the requester's email is
    known (from the event or the profile cache); until then it stays pending and any later
    event of the record tries again."""
    source, target = route.source, route.target
    noun = adapter(source).case_noun
    if _ACK + target in ctx.state.mirrors:
        ctx.note("rules", "not_acknowledged", f"this {noun} was acknowledged on {target} already")
        return
    profile = ctx.profile
    email = (requester.email if requester else None) or (
        profile.emails[0] if profile and profile.emails else None
    )
    if not email:
        ctx.state.mirrors[ACK_PENDING] = ctx.event.source.entity_id
        ctx.retry_in = ACK_RETRY_S
        ctx.note(
            "rules",
            "ack_waiting",
            "the requester's email is not known yet (the event names the requester by id; "
            "their profile arrives with their own contact event): this is decided again "
            f"shortly, and at the {noun}'s next event",
        )
        return
    record_id = ctx.state.members.get(source) or ctx.event.source.entity_id
    name = (requester.name if requester else None) or (profile.name if profile else None)
    text = route.acknowledge.message.format(
        name=name or "there", ticket_id=record_id, subject=subject
    )
    message = Message(
        case_id=record_id,
        author=Actor(kind=ActorKind.INTEGRATION, name="Support"),
        body_text=text,
        public=True,
        created_at=ctx.now,
    )
    command = ctx.emit_here(
        target,
        EntityType.CASE,
        CommandAction.UPSERT,
        message,
        contact=profile or Contact(emails=[email], name=name),
        reason=f"new {source} {noun}: acknowledge it on {target}, if {target} knows the customer",
    )
    # Acknowledged once; the record is not linked to the message's conversation (the flow is
    # a courtesy, not a mirror).
    ctx.state.mirrors.pop(ACK_PENDING, None)
    ctx.state.mirrors[_ACK + target] = command.command_id
