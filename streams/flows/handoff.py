"""AI hand-offs: the AI side hands a conversation to a human, who must get the whole context
so the customer never repeats themselves.

A Handoff event creates one record on the platform its target names (``handoff.flows`` in the
rules, each switchable): the context (reason, intent, sentiment, summary, collected fields,
transcript) is the record's first message, an internal note, written with the record itself,
so nobody is assigned a record without it; the reason goes to a custom field, the group
follows the customer's segment, and the customer is the command's contact, resolved by the
sink by email like every other contact (found, else created once: never a duplicate user).
A target the sync stage does not serve (the live chat) is left to its own consumer.

One record per hand-off: the event id dedupes redeliveries, and a link that already has (or
is creating) the target's record creates nothing more. The audit records tell the story: the
trigger, the data carried (which fields, how many transcript lines, never their values), the
outcome (the record created, or why nothing was).
"""

from __future__ import annotations

from connectors.base.commands import OPTION_GROUP_ID, thread_key
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Handoff,
    Message,
)
from streams.config import LIVE_CHAT, HandoffFlow
from streams.flows import FlowContext

__all__ = ["HANDOFF_REASON", "context_note", "on_handoff"]

#: the canonical custom field of the reason, when the flow names no field of its own
HANDOFF_REASON = "ai_handoff_reason"
_SUBJECT_CHARS = 120
_ROLE = {ActorKind.CUSTOMER: "Customer", ActorKind.AI: "AI agent", ActorKind.AGENT: "Agent"}


def context_note(handoff: Handoff) -> str:
    """The internal note a human reads first: why, what the AI learnt, what was said."""
    lines = [f"AI hand-off: {handoff.reason}"]
    if handoff.intent:
        lines.append(f"Intent: {handoff.intent}")
    if handoff.sentiment:
        lines.append(f"Sentiment: {handoff.sentiment}")
    if handoff.segment:
        lines.append(f"Segment: {handoff.segment}")
    if handoff.summary:
        lines += ["", "Summary:", handoff.summary]
    if handoff.collected_fields:
        lines += ["", "Collected:"]
        lines += [f"- {k}: {v}" for k, v in sorted(handoff.collected_fields.items())]
    if handoff.transcript:
        lines += ["", "Transcript:"]
        for line in handoff.transcript:
            who = _ROLE.get(line.author.kind, line.author.kind.value)
            lines.append(f"[{line.at:%Y-%m-%d %H:%M} UTC] {who}: {line.text}")
    return "\n".join(lines)


def _carried(handoff: Handoff) -> dict[str, str]:
    """What the hand-off disclosed, by name and count (audit records hold no values)."""
    customer = handoff.customer or Contact()
    identity = [k for k in ("emails", "external_id", "name", "phone") if getattr(customer, k)]
    return {
        "client": handoff.client_id or "",
        "target": handoff.target or "",
        "customer_identity": ",".join(identity),
        "collected_fields": ",".join(sorted(handoff.collected_fields)),
        "transcript_lines": str(len(handoff.transcript)),
        "summary": "yes" if handoff.summary else "no",
    }


def on_handoff(ctx: FlowContext) -> None:
    handoff = ctx.event.data
    if not isinstance(handoff, Handoff):
        ctx.note("handoff", "ignored", "a hand-off event without its hand-off data")
        return
    config = ctx.config.handoff
    target = handoff.target or config.default_target
    ctx.note("handoff", "requested", handoff.reason, **_carried(handoff))
    platform = config.platform_for(target)
    if platform is None:
        if target == LIVE_CHAT:
            ctx.note("handoff", "left_to_live_chat", "the live chat bridge takes this hand-off")
        else:
            ctx.note("handoff", "unknown_target", f"no hand-off flow serves target {target!r}")
        return
    flow = config.flows.get(platform)
    if flow is None or not flow.enabled:
        ctx.note(
            "handoff",
            "flow_off",
            f"hand-offs to {platform} are switched off (handoff.flows.{platform} in the rules); "
            "nothing was created. Enable the flow, or send the hand-off to another target",
        )
        return
    state = ctx.state
    if platform in state.members or platform in state.creating:
        record = state.members.get(platform, "(being created)")
        ctx.note("handoff", "already_handed_off", f"{platform} record {record} has the context")
        return
    _create(ctx, handoff, platform, flow)


def _create(ctx: FlowContext, handoff: Handoff, platform: str, flow: HandoffFlow) -> None:
    customer = handoff.customer
    email = customer.emails[0] if customer and customer.emails else None
    requester = Actor(
        kind=ActorKind.CUSTOMER,
        id=customer.external_id if customer else None,
        email=email,
        name=customer.name if customer else None,
    )
    headline = handoff.intent or handoff.reason
    record = Case(
        subject=f"AI hand-off: {headline}"[:_SUBJECT_CHARS],
        status=CaseStatus.OPEN,
        requester=requester,
        custom_fields={flow.reason_field or HANDOFF_REASON: handoff.reason},
        channel="ai_handoff",
    )
    note = Message(
        case_id=handoff.case_id,
        author=Actor(kind=ActorKind.AI, name="AI agent"),
        body_text=context_note(handoff),
        public=False,
        created_at=ctx.event.source.occurred_at,
    )
    group = flow.group_for(handoff.segment)
    options = {OPTION_GROUP_ID: str(group)} if group is not None else {}
    command = ctx.emit_here(
        platform,
        EntityType.CASE,
        CommandAction.UPSERT,
        record,
        changed_fields=["subject", "status", "custom_fields"],
        thread=[note],
        contact=customer,
        options=options,
        reason=(
            f"AI hand-off ({handoff.reason}): a record on {platform} with the context as its "
            f"first internal note{f', group {group}' if group is not None else ''}"
        ),
    )
    ctx.state.creating.append(platform)
    ctx.state.add_mirror(
        f"{ctx.side}:{handoff.case_id}", f"pending:{command.command_id}:{thread_key(0)}"
    )
