"""Messages: the Intercom thread is kept and mirrored into the Zendesk ticket; Zendesk
agents' public replies go back into the Intercom conversation; internal notes stay internal.

Mirrors are remembered both ways (``state.mirrors``: source message → its mirror), so a
message is never copied twice and a mirror is never copied back (echo detection for
messages, whatever the webhook's actor says).

A Zendesk comment made private (``ticket.comment_made_private``) is remembered too
(``MADE_PRIVATE``): its ``comment_added``, redelivered or arriving late with ``public: true``,
must not be copied to the customer then. Made private after its copy reached Intercom, the copy
stays: Intercom cannot hide a conversation part, so the audit says so and names the fix.
"""

from __future__ import annotations

from connectors.base.commands import CREATED_MESSAGE
from schemas.models import ActorKind, CommandAction, EntityType, Message, Op
from streams.flows import FlowContext
from streams.flows.cases import ACK_PENDING, acknowledge

__all__ = ["MADE_PRIVATE", "on_message"]

#: ``state.mirrors`` value of a Zendesk comment made private before anything was copied
MADE_PRIVATE = "made-private"


def _is_mirror(ctx: FlowContext, key: str) -> bool:
    return any(value == key for value in ctx.state.mirrors.values())


def on_message(ctx: FlowContext) -> None:
    message = ctx.event.data
    if not isinstance(message, Message):
        ctx.note("sync", "ignored", "a deleted message is not removed from its mirror")
        return
    key = f"{ctx.side}:{ctx.event.source.entity_id}"
    if _is_mirror(ctx, key):
        ctx.note(
            "echo", "echo_suppressed", f"layer 2: {key} is the mirror we wrote of another message"
        )
        return
    if key in ctx.state.mirrors:
        _known(ctx, key, message)
        return
    if ctx.side == "intercom":
        _from_intercom(ctx, key, message)
    else:
        _from_zendesk(ctx, key, message)


def _known(ctx: FlowContext, key: str, message: Message) -> None:
    mirror = ctx.state.mirrors[key]
    if mirror == MADE_PRIVATE:
        ctx.note(
            "rules",
            "kept_internal",
            f"{key} was made private in Zendesk: this earlier, public version of it is not "
            "copied to the customer",
        )
    elif ctx.event.op is Op.UPDATE and not message.public:
        ctx.note(
            "sync",
            "privacy_not_mirrored",
            f"{key} was made private in Zendesk after its copy ({mirror}) reached the "
            "customer in Intercom, which cannot hide a conversation part: redact that part "
            "in Intercom if it must go",
        )
    else:
        ctx.note(
            "dedupe",
            "already_mirrored",
            f"{key} is mirrored already (notifications repeat a conversation's first "
            "message; platforms redeliver)",
        )


def _from_intercom(ctx: FlowContext, key: str, message: Message) -> None:
    state = ctx.state
    if state.origin not in (None, "intercom"):
        ctx.note("sync", "no_action", "Intercom message on a link that started in Zendesk")
        return
    state.origin = "intercom"
    added = state.add_to_thread(
        ctx.event.source.entity_id, message.model_dump(mode="json"), ctx.config.max_thread_messages
    )
    if "zendesk" not in state.members and "zendesk" not in state.creating:
        if added:
            ctx.note(
                "thread", "kept", "kept for the ticket's history; the conversation is not escalated"
            )
        return
    command = ctx.emit_here(
        "zendesk",
        EntityType.MESSAGE,
        CommandAction.APPEND,
        message,
        reason=(
            "new Intercom message appended to the linked ticket as "
            + ("a public comment" if message.public else "an internal note")
        ),
    )
    state.mirrors[key] = f"pending:{command.command_id}:{CREATED_MESSAGE}"


def _from_zendesk(ctx: FlowContext, key: str, message: Message) -> None:
    if ACK_PENDING in ctx.state.mirrors:
        author = message.author if message.author.kind is ActorKind.CUSTOMER else None
        acknowledge(ctx, subject="", requester=author)
    if not message.public:
        if ctx.event.op is Op.UPDATE:  # made private: a late public version must not cross
            ctx.state.mirrors[key] = MADE_PRIVATE
        ctx.note("rules", "kept_internal", "internal notes stay in Zendesk")
        return
    if message.author.kind is not ActorKind.AGENT:
        ctx.note(
            "rules",
            "not_mirrored",
            "only agents' public replies go to Intercom; "
            f"this one is by a {message.author.kind.value}",
        )
        return
    if not ctx.config.flows.replies_to_intercom.enabled:
        ctx.note("rules", "flow_off", "replies_to_intercom is switched off")
        return
    if "intercom" not in ctx.state.members:
        ctx.note("sync", "no_action", "the ticket is not linked to an Intercom conversation")
        return
    command = ctx.emit_here(
        "intercom",
        EntityType.MESSAGE,
        CommandAction.APPEND,
        message,
        reason="Zendesk agent's public reply sent to the Intercom conversation as an admin reply",
    )
    ctx.state.mirrors[key] = f"pending:{command.command_id}:{CREATED_MESSAGE}"
