"""The demo's live chat act: an AI chat escalates to a human in Zendesk's agent workspace.

The AI side hands the chat over (``POST /handoff``, target ``live_chat``); the customer's
chat client follows the worker's stream (``GET /chat/{id}/stream``) and writes through it; a
human agent answers in the agent workspace (the Conversations sandbox), an image among the
answers, then releases control; the customer is told the session ended and the conversation
is the AI agent's again (the switchboard's default integration takes it back with the next
message). Everything goes through Kafka and a worker process (``app.chat_rehearsal``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from app.chat_rehearsal import ChatStack, ClientStream, chat_stack, handoff_body

__all__ = ["run_chat_act"]

SCREENSHOT = "https://files.example.com/refund-screenshot.png"


def _say(actor: str, text: str) -> None:
    click.secho(f"  {actor}: {text}", bold=True)


def _shown(stream: ClientStream, start: int) -> int:
    """Print what the customer's chat window received since ``start``."""
    for event in stream.events[start:]:
        kind = event["type"]
        if kind == "message":
            media = "".join(f" [{a['content_type']}: {a['url']}]" for a in event["attachments"])
            who = event["author"]["name"] or event["author"]["kind"]
            click.secho(f"      chat window ← {who}: {event['text'] or ''}{media}", fg="cyan")
        else:
            click.secho(f"      chat window ← ({kind}) {event.get('text') or ''}", fg="yellow")
    return len(stream.events)


async def _story(chat: ChatStack) -> None:
    desk = chat.workspaces["chat_a"]
    chat_id = f"web-chat-{uuid.uuid4().hex[:8]}"
    stream = chat.stream("widget", chat_id)
    _say("Maria, to the AI agent in the web chat", "I was charged twice. I want a human!")
    _say("AI agent", "hands the chat to a live agent (POST /handoff, target live_chat)")
    await chat.hand_off(
        "widget",
        handoff_body(
            chat_id,
            email=f"maria.{uuid.uuid4().hex[:4]}@example.com",
            name="Maria Lopez",
            summary="Charged twice for March (INV-2026-03-1181); asked for a human.",
            reason="customer asked for a human",
            sentiment="frustrated",
            intent="refund",
        ),
    )
    await stream.until(lambda s: "started" in s.kinds(), "the session started", within=60)
    seen = _shown(stream, 0)
    found = await desk.conversation_for(chat_id)
    assert found is not None
    conversation = found["id"]
    summary = found["messages"][0].content.get("text", "")
    first = summary.splitlines()[0] if summary else ""
    click.secho(f"  ✓ agent workspace: conversation opened, the summary first: {first}", fg="green")

    _say("Maria", "writes: 'The second charge is on March 3rd.'")
    await chat.say("widget", chat_id, {"id": "m1", "text": "The second charge is on March 3rd."})

    async def arrived() -> bool:
        current = await desk.conversation_for(chat_id)
        return current is not None and any(m.author["type"] == "user" for m in current["messages"])

    await chat.eventually(arrived, "the customer's message in the agent workspace", within=60)
    click.secho("  ✓ agent workspace: Maria's message arrived", fg="green")

    _say("Sam, in the Zendesk agent workspace", "answers, with a screenshot")
    await desk.reply(conversation, {"text": "Hi Maria, I am Sam. I see both charges."})
    await desk.reply(conversation, {"type": "image", "mediaUrl": SCREENSHOT, "text": "Refunded:"})
    await stream.until(lambda s: s.kinds().count("message") >= 2, "Sam's answers", within=60)
    seen = _shown(stream, seen)

    _say("Sam", "solves the ticket: control is released")
    await desk.release(conversation)
    await stream.until(lambda s: "ended" in s.kinds(), "the end of the session", within=60)
    _shown(stream, seen)
    state = desk.sandbox.state.conversations[conversation]
    back = desk.sandbox.config.ai_switchboard_integration_name
    if state.active_id is None:
        click.secho(
            "  ✓ released: no integration holds the conversation; the next message goes to "
            f"{back!r} (the AI agent) again",
            fg="green",
        )
    else:
        click.secho(
            f"  ✗ not released: {state.active_id!r} still holds the conversation; see the "
            f"worker's log ({chat.worker.log})",
            fg="red",
        )


async def run_chat_act(bootstrap: str, folder: Path) -> None:
    async with chat_stack(bootstrap, folder, name="demo-chat") as chat:
        click.echo(f"  two workspaces and a worker up; worker log: {chat.worker.log}")
        await _story(chat)
