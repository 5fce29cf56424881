"""The live chat bridge's Zendesk Conversations side (``connectors.base.chat.ChatBridge``).

Hand-off (article 003, "Escalation"): the customer's Sunshine user is found by external id
(the customer's email, else the chat's own id) or created (a 409 from a concurrent create is
read back); the chat's conversation is found among the user's conversations by the chat id
stamped in its metadata (``CHAT_KEY``) or created with it; the hand-off summary is posted as
its first message (a ``business`` message, our marker in its metadata); then control passes
to the agents' switchboard integration (``handoff_to``) with the hand-off's metadata (flat
strings, at most 4 KB: spec ``components/schemas/passControlBody``, "metadata").

Customer messages are posted as the ``user`` author with the Sunshine user id, text or media
(``image`` for image types, ``file`` otherwise, by ``mediaUrl``: spec ``imageMessage``,
``fileMessage``), one message per attachment, each with its own marker.

Idempotency: ``passControl`` by our integration to the control's holder is disregarded by the
platform; for the messages, ``possibly_done`` reads the latest page of the conversation and
skips what carries the marker. Residual window: a message posted more than one page (100
messages) ago by an attempt whose result was lost would be posted again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, Final

import httpx

from connectors.base.chat import ChatBridge, ChatSession
from connectors.base.settings import ConnectorSettings
from connectors.zendesk_conversations.client import SunshineClient
from connectors.zendesk_conversations.normalize import MARKER_KEY
from connectors.zendesk_conversations.settings import ConversationsSettings
from schemas.errors import ConfigurationError, FatalAPIError
from schemas.models import Handoff, Message

__all__ = ["CHAT_KEY", "SunshineBridge", "handoff_metadata", "summary_text"]

#: Conversation metadata key holding the chat id the conversation was created for.
CHAT_KEY: Final = "deskstream_chat_id"
#: Sunshine's cap on a text message's length (spec ``textMessage.text``: maxLength 4096).
TEXT_LIMIT: Final = 4096
#: Switchboard metadata is capped at 4 KB; the summary takes at most this much of it.
SUMMARY_IN_METADATA: Final = 1500
_METADATA_BUDGET: Final = 4000
_CHATS_REMEMBERED: Final = 10_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_text(handoff: Handoff) -> str:
    """The first message the agent reads: why, the summary, what was collected, the
    transcript's latest lines (as many as fit)."""
    head = [f"Handed over by the AI agent: {handoff.reason}"]
    if handoff.summary:
        head.append(f"Summary: {handoff.summary}")
    judged = (("Intent", handoff.intent), ("Sentiment", handoff.sentiment))
    head += [f"{name}: {value}" for name, value in judged if value]
    head += [f"{name}: {value}" for name, value in sorted(handoff.collected_fields.items())]
    text = "\n".join(head)
    lines = [f"[{line.author.kind.value}] {line.text}" for line in handoff.transcript]
    kept: list[str] = []
    room = TEXT_LIMIT - len(text) - len("\nTranscript:") - 1
    for line in reversed(lines):
        if len(line) + 1 > room:
            break
        kept.insert(0, line)
        room -= len(line) + 1
    if kept:
        text += "\nTranscript:\n" + "\n".join(kept)
    return _cut(text, TEXT_LIMIT)


def handoff_metadata(chat_id: str, handoff: Handoff) -> dict[str, str]:
    """passControl metadata: flat strings within the platform's 4 KB."""
    values = {
        CHAT_KEY: chat_id,
        "reason": handoff.reason,
        "intent": handoff.intent or "",
        "sentiment": handoff.sentiment or "",
        "summary": _cut(handoff.summary or "", SUMMARY_IN_METADATA),
    }
    # What the AI side passes on (its chat user id...), after ours, as far as it fits.
    values |= {k: v for k, v in handoff.metadata.items() if k not in values}
    metadata: dict[str, str] = {}
    used = 0
    for key, value in values.items():
        if not value:
            continue
        size = len(key.encode()) + len(value.encode()) + 8
        if used + size > _METADATA_BUDGET:
            continue
        metadata[key] = value
        used += size
    return metadata


def _customer(chat_id: str, handoff: Handoff) -> tuple[str, dict[str, str]]:
    """(external id, profile) of the customer's Sunshine user: found by the customer's
    external id, else their email (the same person in every chat, never a second user),
    else the chat's own id (an anonymous visitor)."""
    customer = handoff.customer
    fields = handoff.collected_fields
    emails = [*(customer.emails if customer else []), fields.get("email") or ""]
    email = next((e.strip().lower() for e in emails if e.strip()), "")
    name = (customer.name if customer else None) or fields.get("name")
    profile = {"email": email} if email else {}
    if name:
        profile["givenName"] = name
    external = customer.external_id if customer else None
    return (external or email or f"chat:{chat_id}"), profile


def _content(message: Message) -> list[dict[str, Any]]:
    """One Sunshine content per desk message: the text, then each attachment."""
    contents: list[dict[str, Any]] = []
    if message.body_text and not message.attachments:
        contents.append({"type": "text", "text": _cut(message.body_text, TEXT_LIMIT)})
    for index, attachment in enumerate(message.attachments):
        kind = "image" if attachment.content_type.startswith("image/") else "file"
        content: dict[str, Any] = {"type": kind, "mediaUrl": attachment.source_url}
        if index == 0 and message.body_text:
            content["text"] = _cut(message.body_text, TEXT_LIMIT)
        if kind == "image":
            content["altText"] = attachment.name
        contents.append(content)
    return contents


class SunshineBridge(ChatBridge):
    platform: ClassVar[str] = "zendesk_conversations"

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(connector_id=connector_id)
        own = settings.platform_settings
        if not isinstance(own, ConversationsSettings):
            raise ConfigurationError(
                f"connector {connector_id!r} has no Conversations app id; set "
                f"DESKSTREAM_CONNECTORS__{connector_id}__APP_ID and restart"
            )
        self.settings = own
        self.client = SunshineClient.from_settings(settings, own.app_id, transport=transport)
        #: conversation id → chat id (or "" for a conversation that is not ours)
        self._chats: OrderedDict[str, str] = OrderedDict()

    async def _user(self, chat_id: str, handoff: Handoff) -> str:
        external_id, profile = _customer(chat_id, handoff)
        user = await self.client.user(external_id)
        if user is None:
            try:
                user = await self.client.create_user(external_id, profile)
            except FatalAPIError as exc:
                if exc.status != 409:
                    raise
                user = await self.client.user(external_id)  # created meanwhile: read it back
                if user is None:
                    raise
        return str(user["id"])

    async def _posted(self, conversation_id: str, marker: str) -> set[str]:
        """The markers of the latest page's messages that start with ``marker``."""
        found: set[str] = set()
        for message in await self.client.messages(conversation_id):
            value = (message.get("metadata") or {}).get(MARKER_KEY)
            if isinstance(value, str) and value.startswith(marker):
                found.add(value)
        return found

    async def start(
        self, chat_id: str, handoff: Handoff, *, marker: str, possibly_done: bool
    ) -> ChatSession:
        user_id = await self._user(chat_id, handoff)
        conversation_id = None
        for conversation in await self.client.conversations_of(user_id):
            if (conversation.get("metadata") or {}).get(CHAT_KEY) == chat_id:
                conversation_id = str(conversation["id"])
        fresh = conversation_id is None
        if conversation_id is None:
            conversation_id = await self.client.create_conversation(user_id, {CHAT_KEY: chat_id})
        self._remember(conversation_id, chat_id)
        if fresh or not await self._posted(conversation_id, marker):
            await self.client.post_message(
                conversation_id,
                {"type": "business", "displayName": "AI agent hand-off"},
                {"type": "text", "text": summary_text(handoff)},
                {MARKER_KEY: marker},
            )
        metadata = handoff_metadata(chat_id, handoff)
        await self.client.pass_control(conversation_id, self.settings.handoff_to, metadata)
        return ChatSession(self.connector_id, user_id, conversation_id)

    async def forward(
        self, session: ChatSession, message: Message, *, marker: str, possibly_done: bool
    ) -> int:
        contents = _content(message)
        done = await self._posted(session.conversation_id, marker) if possibly_done else set()
        written = 0
        for index, content in enumerate(contents):
            mark = marker if index == 0 else f"{marker}#{index}"
            if mark in done:
                continue
            await self.client.post_message(
                session.conversation_id,
                {"type": "user", "userId": session.user_id},
                content,
                {MARKER_KEY: mark},
            )
            written += 1
        return written

    async def chat_of(self, conversation_id: str) -> str | None:
        known = self._chats.get(conversation_id)
        if known is None:
            metadata = (await self.client.conversation(conversation_id)).get("metadata") or {}
            known = str(metadata.get(CHAT_KEY) or "")
            self._remember(conversation_id, known)
        return known or None

    def knows(self, conversation_id: str) -> bool:
        return conversation_id in self._chats

    def _remember(self, conversation_id: str, chat_id: str) -> None:
        self._chats[conversation_id] = chat_id
        self._chats.move_to_end(conversation_id)
        while len(self._chats) > _CHATS_REMEMBERED:
            self._chats.popitem(last=False)

    async def aclose(self) -> None:
        await self.client.aclose()
