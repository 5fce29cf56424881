"""The contract of a live chat desk: where a hand-off to humans continues as a conversation.

The live chat bridge (``app.agents.chat``) keeps the customer's chat (the AI agent's widget)
and a conversation on a chat desk in step. A platform implements ``ChatBridge``:

- ``start``: find or create the customer and the desk conversation for a chat, post the
  hand-off's summary as its first message and give control to the human agents;
- ``forward``: post one customer message (text, images, files) into the conversation;
- ``chat_of``: which chat a desk conversation belongs to (the bridge stamps the chat id on
  the conversations it creates), so the desk's events find their way back to the customer.

Every write is made idempotent by the bridge: ``marker`` (the causing event's id) travels
with what is written, and with ``possibly_done`` (the input may have been processed before:
read again after a rebalance or a crash, or retried after a failure) the bridge looks for a
write carrying the marker before it writes.
"""

from __future__ import annotations

import abc
import json
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

from schemas.models import Handoff, Message

__all__ = ["ChatBridge", "ChatSession"]


@dataclass(frozen=True, slots=True)
class ChatSession:
    """Where one chat continues: the desk connector, its user and its conversation."""

    connector_id: str
    user_id: str
    conversation_id: str
    ended: bool = False
    #: ids of the latest customer messages forwarded, newest last: a copy (a client retry
    #: under the same message id) is dropped on sight
    forwarded: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ChatSession:
        values = json.loads(text)
        values["forwarded"] = tuple(values.get("forwarded", ()))
        return cls(**values)

    def after_forwarding(self, event_id: str, *, keep: int = 64) -> ChatSession:
        return replace(self, forwarded=(*self.forwarded, event_id)[-keep:])


class ChatBridge(abc.ABC):
    platform: ClassVar[str]

    def __init__(self, *, connector_id: str) -> None:
        self.connector_id = connector_id

    @abc.abstractmethod
    async def start(
        self, chat_id: str, handoff: Handoff, *, marker: str, possibly_done: bool
    ) -> ChatSession:
        """The chat's desk conversation, its summary posted and control with the humans."""

    @abc.abstractmethod
    async def forward(
        self, session: ChatSession, message: Message, *, marker: str, possibly_done: bool
    ) -> int:
        """Post the customer's ``message``; the number of desk messages written (0: an
        earlier attempt had written them)."""

    @abc.abstractmethod
    async def chat_of(self, conversation_id: str) -> str | None:
        """The chat a desk conversation was created for; None for one that is not ours."""

    @abc.abstractmethod
    def knows(self, conversation_id: str) -> bool:
        """Whether ``chat_of`` answers for this conversation without asking the desk."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the bridge's connections."""
