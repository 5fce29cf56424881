"""Messages: a linked record's messages are appended to the other linked records, along the
routes whose ``messages`` flow accepts them (visibility, author); before a record exists on a
route's target, the origin's messages are kept as the history a create carries.

Mirrors are remembered (``state.mirrors``: source message → its copies), so a message is
never copied twice and a copy is never copied back (echo detection for messages, whatever the
webhook's actor says). A message reaches every platform the routes lead to, hop by hop, in
one step: its copies are echoes, never sources.

A message made private after it was posted (an update that turns it internal) is remembered
too (``MADE_PRIVATE``): its first, public version, redelivered or arriving late, must not be
copied to the customer then. Made private after its copies were written, they stay: the
audit says so and names the fix.
"""

from __future__ import annotations

from connectors.base.commands import CREATED_MESSAGE
from schemas.models import ActorKind, CommandAction, EntityType, Message, Op
from streams.config import Route
from streams.flows import FlowContext
from streams.flows.cases import ACK_PENDING, acknowledge, acknowledge_route, history_needed
from streams.mapping import adapter, reachable

__all__ = ["MADE_PRIVATE", "on_message"]

#: ``state.mirrors`` value of a message made private before anything was copied
MADE_PRIVATE = "made-private"


def on_message(ctx: FlowContext) -> None:
    message = ctx.event.data
    if not isinstance(message, Message):
        ctx.note("sync", "ignored", "a deleted message is not removed from its mirror")
        return
    key = f"{ctx.side}:{ctx.event.source.entity_id}"
    if ctx.state.is_mirror(key):
        ctx.note(
            "echo", "echo_suppressed", f"layer 2: {key} is the mirror we wrote of another message"
        )
        return
    if key in ctx.state.mirrors:
        _known(ctx, key, message)
        return
    _copy(ctx, key, message)


def _known(ctx: FlowContext, key: str, message: Message) -> None:
    mirror = ctx.state.mirrors[key]
    if mirror == MADE_PRIVATE:
        ctx.note(
            "rules",
            "kept_internal",
            f"{key} was made private on {ctx.side}: this earlier, public version of it is not "
            "copied to the customer",
        )
    elif ctx.event.op is Op.UPDATE and not message.public:
        ctx.note(
            "sync",
            "privacy_not_mirrored",
            f"{key} was made private on {ctx.side} after its copies ({mirror}) were written, "
            "and a message once copied cannot be hidden from the customer everywhere: "
            "redact the copies if it must go",
        )
    else:
        ctx.note(
            "dedupe",
            "already_mirrored",
            f"{key} is mirrored already (notifications repeat a conversation's first "
            "message; platforms redeliver)",
        )


def _refusal(route: Route, message: Message) -> tuple[str, str] | None:
    """Why ``route`` does not carry ``message`` (an audit decision and reason), or None."""
    flow = route.messages
    if not message.public and (flow.visibility == "public" or not _internal_ok(route)):
        return "kept_internal", f"internal notes stay on {route.source}"
    if flow.authors is not None and message.author.kind not in flow.authors:
        return "not_mirrored", (
            f"only {', '.join(a.value for a in flow.authors)} messages go from {route.source} "
            f"to {route.target}; this one is by a {message.author.kind.value}"
        )
    if not flow.enabled:
        return "flow_off", f"messages from {route.source} to {route.target} are switched off"
    return None


def _internal_ok(route: Route) -> bool:
    return adapter(route.target).internal_messages


def _copy(ctx: FlowContext, key: str, message: Message) -> None:
    side, state = ctx.side, ctx.state
    if ACK_PENDING in state.mirrors and (route := acknowledge_route(ctx)) is not None:
        author = message.author if message.author.kind is ActorKind.CUSTOMER else None
        acknowledge(ctx, route, subject="", requester=author)
    if not message.public and ctx.event.op is Op.UPDATE:
        state.mirrors[key] = MADE_PRIVATE  # made private: a late public version must not cross
    creates = any(r.create.enabled for r in ctx.config.routes_from(side))
    if state.origin is None and creates:
        state.origin = side
    # The history a create from here carries, while a create may still need it.
    keeps = creates and state.origin == side and history_needed(ctx.config, state)
    added = keeps and state.add_to_thread(
        ctx.event.source.entity_id, message.model_dump(mode="json"), ctx.config.max_thread_messages
    )
    targets = reachable(ctx.config, side, lambda route: _refusal(route, message) is None)
    linked = [p for p in targets if p in state.members or p in state.creating]
    if not linked:
        refusals = [r for route in ctx.config.routes_from(side) if (r := _refusal(route, message))]
        if keeps:
            if added:
                ctx.note("thread", "kept", "kept for the history of the records a create makes")
        elif refusals and not targets:
            ctx.note("rules", *refusals[0])
        else:
            ctx.note("sync", "no_action", f"{side} record is not linked where its messages go")
        return
    copies = []
    for target in linked:
        noun = adapter(target).case_noun
        command = ctx.emit_here(
            target,
            EntityType.MESSAGE,
            CommandAction.APPEND,
            message,
            reason=(
                f"new {side} message appended to the linked {target} {noun} as "
                + ("a public message" if message.public else "an internal note")
            ),
        )
        copies.append(f"pending:{command.command_id}:{CREATED_MESSAGE}")
    for copy in copies:
        state.add_mirror(key, copy)
