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
is creating) the target's record creates nothing more.

Proactive follow-up: when the record goes to pending (the human asked the customer something)
and the flow has ``follow_up_seconds``, a durable timer (``deskstream.timers``) brings the
link back after that interval; if the record is still pending and nobody took it over (its
assignee changed since it went pending: a ticket's assignee, a case's owner, a conversation's
assignment), the AI side gets one follow-up command (its topic ``commands.<AI platform>``,
and the client's callback webhook through its sink). A takeover or the record leaving
pending cancels the timer's decision; a fired follow-up is never sent twice.

The audit records tell the story: the trigger, the data carried (which fields, how many
transcript lines, never their values), the outcome (the record created, or why nothing was),
the follow-up scheduled, cancelled or sent.
"""

from __future__ import annotations

from connectors.base.commands import OPTION_GROUP_ID, thread_key
from connectors.base.links import case_link_id
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Envelope,
    Handoff,
    Message,
    Timer,
)
from streams.config import LIVE_CHAT, HandoffFlow, SyncConfig
from streams.flows import Decisions, FlowContext

__all__ = [
    "FOLLOW_UP",
    "HANDOFF_REASON",
    "context_note",
    "on_follow_up",
    "on_handoff",
    "on_handoff_record",
    "rehomed",
]

#: the timer purpose of a pending follow-up
FOLLOW_UP = "handoff_follow_up"

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


def rehomed(event: Envelope, config: SyncConfig) -> Envelope:
    """A hand-off in place (the escalated conversation itself is assigned) lives in that
    record's own link, where the record's events land, so its assignment and snooze reach the
    follow-up; any other event keeps the link its normaliser gave (a hand-off that creates a
    record: the conversation's link, which the record joins)."""
    handoff = event.data
    if not isinstance(handoff, Handoff) or not config.handoff.in_place(handoff.target):
        return event
    platform = config.handoff.platform_for(handoff.target)
    connector = config.connectors.get(platform) if platform else None
    if platform is None or connector is None:
        return event
    return event.model_copy(update={"link_id": case_link_id(platform, connector, handoff.case_id)})


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
    if state.handoff.get("platform") == platform or platform in state.creating:
        record = state.members.get(platform, "(being created)")
        ctx.note("handoff", "already_handed_off", f"{platform} record {record} has the context")
        return
    if config.in_place(target):
        _assign_in_place(ctx, handoff, platform, flow)
    else:
        _create(ctx, handoff, platform, flow)
    ctx.state.handoff = {
        "platform": platform,
        "side": ctx.side,  # the AI side, where the follow-up goes (not the link's origin)
        "conversation": handoff.case_id,
        "client": handoff.client_id or "",
        "target": handoff.target or "",
    }


def _note(ctx: FlowContext, handoff: Handoff) -> Message:
    return Message(
        case_id=handoff.case_id,
        author=Actor(kind=ActorKind.AI, name="AI agent"),
        body_text=context_note(handoff),
        public=False,
        created_at=ctx.event.source.occurred_at,
    )


def _assign_in_place(ctx: FlowContext, handoff: Handoff, platform: str, flow: HandoffFlow) -> None:
    """The conversation is the record: the note first, then the assignment to the segment's
    group (commands to one record run in order)."""
    ctx.state.members.setdefault(platform, handoff.case_id)
    ctx.emit_here(
        platform,
        EntityType.MESSAGE,
        CommandAction.APPEND,
        _note(ctx, handoff),
        reason=f"AI hand-off ({handoff.reason}): the context as a note on the conversation",
    )
    group = flow.group_for(handoff.segment)
    if group is None:
        ctx.note("handoff", "not_assigned", "no group for this segment and no default_group_id")
        return
    ctx.emit_here(
        platform,
        EntityType.CASE,
        CommandAction.UPDATE,
        Case(status=CaseStatus.OPEN),
        changed_fields=["group"],
        options={OPTION_GROUP_ID: str(group)},
        reason=f"AI hand-off: the conversation assigned to group {group}, after its note",
    )


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
    note = _note(ctx, handoff)
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


# -- pending follow-up ------------------------------------------------------------------------
def _owner(case: Case) -> str:
    owner = case.assignee
    return (owner.email or owner.id or "") if owner is not None else ""


def on_handoff_record(ctx: FlowContext, case: Case) -> None:
    """A change of the record a hand-off made: a human taking over cancels a pending
    follow-up; the record going to pending sets one."""
    state = ctx.state
    memo = state.handoff
    flow = ctx.config.handoff.flows.get(memo.get("platform", ""))
    if flow is None or flow.follow_up_seconds <= 0 or memo.get("followed_up"):
        return
    waiting = memo.get("timer", "")
    if waiting and _owner(case) != memo.get("assignee", ""):
        memo["timer"] = ""
        ctx.note(
            "handoff",
            "follow_up_cancelled",
            f"a human took over the {ctx.side} record (its assignee changed while it was "
            "pending): the AI side will not follow up",
            timer=waiting,
        )
        return
    if waiting and case.status is not CaseStatus.PENDING:
        memo["timer"] = ""
        ctx.note(
            "handoff",
            "follow_up_cancelled",
            f"the {ctx.side} record is {case.status.value}, no longer pending",
            timer=waiting,
        )
        return
    if not waiting and case.status is CaseStatus.PENDING:
        timer = ctx.later(FOLLOW_UP, ctx.side, ctx.ts + flow.follow_up_seconds)
        memo["timer"], memo["assignee"] = timer.timer_id, _owner(case)
        ctx.note(
            "handoff",
            "follow_up_scheduled",
            f"the {ctx.side} record went pending: the AI side follows up in "
            f"{flow.follow_up_seconds:g} s unless a human takes over",
            timer=timer.timer_id,
        )


def on_follow_up(decisions: Decisions, timer: Timer) -> None:
    """A pending follow-up is due: tell the AI side, once, unless it was cancelled."""
    state = decisions.state
    memo = state.handoff
    if memo.get("timer") != timer.timer_id:
        decisions.note(
            "handoff",
            "follow_up_dropped",
            "the follow-up was cancelled (a human took over, or the record left pending) "
            "or already sent",
            timer=timer.timer_id,
        )
        return
    platform, origin = timer.subject, memo.get("side") or state.origin or ""
    record = state.members.get(platform, "")
    message = Handoff(
        case_id=memo.get("conversation", ""),
        reason="follow_up",
        summary=(
            f"The {platform} record {record} has been pending since "
            f"{timer.set_at:%Y-%m-%d %H:%M:%S} UTC without a human taking over"
        ),
        target=memo.get("target") or None,
        client_id=memo.get("client") or None,
        metadata={"event": "follow_up", "platform": platform, "record": record},
    )
    decisions.emit(
        origin,
        EntityType.HANDOFF,
        CommandAction.HANDOFF,
        message,
        source=platform,
        reason=f"pending follow-up: the {platform} record {record} is still pending, unowned",
    )
    memo["timer"], memo["followed_up"] = "", timer.timer_id
