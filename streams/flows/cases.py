"""Cases: an Intercom conversation becomes a Zendesk ticket; status, priority and tags then
round-trip both ways; a new Zendesk ticket from a known customer is acknowledged in Intercom.
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
from streams.flows import FlowContext
from streams.flows.case_fields import observe_case, reconcile_case, track_create
from streams.mapping import (
    custom_fields_for_zendesk,
    map_priority,
    map_status,
    map_tags,
    other_side,
    route_group,
)

__all__ = ["ACK_MARKER", "ACK_PENDING", "acknowledge", "on_case", "on_case_echo"]

ACK_MARKER = "ack:intercom"

_PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
_DONE = {CaseStatus.SOLVED, CaseStatus.CLOSED}


def on_case(ctx: FlowContext) -> None:
    case = ctx.event.data
    side = ctx.side
    state = ctx.state
    if not isinstance(case, Case):
        ctx.note("sync", "ignored", f"{side} deleted the record; its mirror is left as it is")
        return
    state.records[side] = case.model_dump(mode="json")
    observe_case(ctx, case, ours=False)
    target = other_side(side)
    if target in state.members or target in state.creating:
        before = len(ctx.commands)
        reconcile_case(ctx)
        if len(ctx.commands) == before and not ctx.audits:
            ctx.note(
                "sync",
                "unchanged",
                f"every linked record already holds the winning values ({side} reported no "
                "change that needs a write)",
            )
    elif state.origin == "intercom" and side == "intercom":
        _maybe_escalate(ctx, case)
    elif state.origin == "zendesk" and side == "zendesk":
        _maybe_acknowledge(ctx, case)
    else:
        ctx.note("sync", "no_action", f"{side} record is not linked to the other platform")


def on_case_echo(ctx: FlowContext) -> None:
    """Our own write reported back: what the record now holds. When a person changed the
    field after our write was decided, the record now disagrees with the winner and the
    reconcile writes the winner there once (crossed writes)."""
    case = ctx.event.data
    if not isinstance(case, Case):
        return
    ctx.state.records[ctx.side] = case.model_dump(mode="json")
    observe_case(ctx, case, ours=True)
    if other_side(ctx.side) in ctx.state.members:
        reconcile_case(ctx)


# -- escalation ---------------------------------------------------------------------------
def _escalation_reason(ctx: FlowContext, case: Case) -> str | None:
    flow = ctx.config.flows.escalate_to_zendesk
    if not flow.enabled:
        return None
    rule = flow.when
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
    plan = ctx.profile.plan if ctx.profile else None
    if plan and plan in rule.plans_any:
        return f"customer on plan {plan}"
    return None


def _maybe_escalate(ctx: FlowContext, case: Case) -> None:
    reason = _escalation_reason(ctx, case)
    if reason is None:
        ctx.note("rules", "not_escalated", "the conversation matches no escalation rule")
        return
    if not ctx.state.thread:
        # Not one message yet: its webhook is still on the way (they arrive in any order).
        ctx.retry_in = 1.0
        ctx.note("rules", "escalation_waiting", f"{reason}, but no message has arrived yet")
        return
    config = ctx.config
    status = map_status(config, "intercom", case.status) or CaseStatus.OPEN
    priority = map_priority(config, "intercom", case.priority)
    tags = map_tags(config, "intercom", case.tags)
    contact = ctx.profile or _contact_from(case.requester)
    custom_fields, refused = custom_fields_for_zendesk(config, case, contact)
    ticket = Case(
        subject=case.subject or _subject_from(ctx),
        status=status,
        priority=priority,
        tags=sorted(tags),
        requester=case.requester,
        custom_fields=custom_fields,
        channel=case.channel,
        created_at=case.created_at,
    )
    options: dict[str, str] = {}
    group = route_group(config, ctx.profile, case.tags)
    if group is not None:
        options[OPTION_GROUP_ID] = str(group)
    # Webhooks arrive in any order: the ticket's history is told in the order it happened.
    kept = ctx.state.thread[-config.max_thread_messages :]
    ids = ctx.state.thread_ids[-len(kept) :] if kept else []
    ordered = sorted(zip(kept, ids, strict=True), key=lambda pair: pair[0]["created_at"])
    thread = [Message.model_validate(m) for m, _ in ordered]
    command = ctx.emit_here(
        "zendesk",
        EntityType.CASE,
        CommandAction.UPSERT,
        ticket,
        changed_fields=["subject", "status", "priority", "tags", "custom_fields"],
        thread=thread,
        contact=contact,
        options=options,
        reason=f"escalated to Zendesk: {reason}, with {len(thread)} message(s) of history",
    )
    for index, (_, message_id) in enumerate(ordered):
        ctx.state.mirrors[f"intercom:{message_id}"] = (
            f"pending:{command.command_id}:{thread_key(index)}"
        )
    ctx.state.creating.append("zendesk")
    track_create(ctx, "zendesk", command.command_id)
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


def _subject_from(ctx: FlowContext) -> str:
    for message in ctx.state.thread:
        text = (message.get("body_text") or "").strip()
        if text:
            return text.splitlines()[0][:120]
    return f"Conversation {ctx.event.source.entity_id}"


# -- acknowledgement ----------------------------------------------------------------------
ACK_PENDING = "ack:pending"
ACK_RETRY_S = 1.0


def _maybe_acknowledge(ctx: FlowContext, case: Case) -> None:
    flow = ctx.config.flows.acknowledge_new_tickets
    pending = ACK_PENDING in ctx.state.mirrors
    if not flow.enabled or (ctx.event.op.value != "create" and not pending):
        ctx.note("sync", "no_action", "Zendesk ticket not linked to Intercom")
        return
    acknowledge(ctx, subject=case.subject or "", requester=case.requester)


def acknowledge(ctx: FlowContext, *, subject: str, requester: Actor | None) -> None:
    """Acknowledge a new Zendesk ticket in Intercom, once, when the requester's email is known
    (from the event or the profile cache); until then it stays pending and any later event of
    the ticket tries again."""
    if ACK_MARKER in ctx.state.mirrors:
        ctx.note("rules", "not_acknowledged", "this ticket was acknowledged in Intercom already")
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
            "the requester's email is not known yet (Zendesk names requesters by id; their "
            "profile arrives with their own user event): this is decided again shortly, and at "
            "the ticket's next event",
        )
        return
    ticket_id = ctx.state.members.get("zendesk") or ctx.event.source.entity_id
    name = (requester.name if requester else None) or (profile.name if profile else None)
    text = ctx.config.flows.acknowledge_new_tickets.message.format(
        name=name or "there", ticket_id=ticket_id, subject=subject
    )
    message = Message(
        case_id=ticket_id,
        author=Actor(kind=ActorKind.INTEGRATION, name="Support"),
        body_text=text,
        public=True,
        created_at=ctx.now,
    )
    command = ctx.emit_here(
        "intercom",
        EntityType.CASE,
        CommandAction.UPSERT,
        message,
        contact=profile or Contact(emails=[email], name=name),
        reason="new Zendesk ticket: acknowledge it in Intercom, if Intercom knows the customer",
    )
    # Acknowledged once; the ticket is not linked to the message's conversation (the flow is
    # a courtesy, not a mirror).
    ctx.state.mirrors.pop(ACK_PENDING, None)
    ctx.state.mirrors[ACK_MARKER] = command.command_id
