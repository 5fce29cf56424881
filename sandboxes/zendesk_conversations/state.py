"""The app's state: users, conversations, messages and the switchboard.

Operations are synchronous: each validates first, then applies its change whole and returns
the webhook :class:`Event` s it causes, which the HTTP layer publishes afterwards.
The app allows several personal conversations per user (``multiConvoEnabled``), as Zendesk
messaging apps commonly do; the first one is the user's default conversation.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.zendesk_conversations.config import (
    AGENT_WORKSPACE_TYPE,
    SunshineSandboxConfig,
)
from sandboxes.zendesk_conversations.errors import SunshineAPIError, bad_request
from sandboxes.zendesk_conversations.model import (
    Conversation,
    Event,
    IdFactory,
    Message,
    Switchboard,
    SwitchboardIntegration,
    User,
    iso_ms,
)
from sandboxes.zendesk_conversations.render import (
    conversation_truncated,
    message_webhook,
    user_truncated,
)

__all__ = ["SunshineState"]


def _seed_switchboard(config: SunshineSandboxConfig) -> Switchboard:
    """The AI agent first, the agent workspace next, each the other's ``next``."""
    ai = SwitchboardIntegration(
        id=config.ai_switchboard_integration_id,
        name=config.ai_switchboard_integration_name,
        integration_id=config.integration_id,
        integration_type="custom",
        deliver_standby_events=config.ai_deliver_standby_events,
        next_id=config.agent_workspace_switchboard_integration_id,
    )
    agents = SwitchboardIntegration(
        id=config.agent_workspace_switchboard_integration_id,
        name=config.agent_workspace_switchboard_integration_name,
        integration_id=config.agent_workspace_integration_id,
        integration_type=AGENT_WORKSPACE_TYPE,
        deliver_standby_events=False,
        next_id=config.ai_switchboard_integration_id,
    )
    return Switchboard(
        id=config.switchboard_id,
        enabled=config.switchboard_enabled,
        default_id=ai.id,
        integrations={ai.id: ai, agents.id: agents},
    )


class SunshineState:
    """Everything one sandboxed app knows."""

    def __init__(self, config: SunshineSandboxConfig, *, rng: random.Random, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.ids = IdFactory(rng, clock)
        self.users: dict[str, User] = {}
        self.users_by_external_id: dict[str, str] = {}
        self.conversations: dict[str, Conversation] = {}
        self.switchboard = _seed_switchboard(config)

    def reset(self) -> None:
        self.users.clear()
        self.users_by_external_id.clear()
        self.conversations.clear()
        self.switchboard = _seed_switchboard(self.config)

    def now(self) -> str:
        return iso_ms(self.clock.now())

    def event(
        self, kind: str, payload: dict[str, Any], conversation: Conversation | None = None
    ) -> Event:
        return Event(
            id=self.ids.new(),
            type=kind,
            created_at=self.now(),
            payload=payload,
            conversation_id=conversation.id if conversation else None,
        )

    # -- users ---------------------------------------------------------------------------

    def create_user(
        self,
        *,
        external_id: str | None,
        profile: dict[str, Any],
        metadata: dict[str, Any] | None,
        signed_up_at: str | None,
        to_be_retained: bool | None,
    ) -> User:
        if external_id is not None and external_id in self.users_by_external_id:
            raise SunshineAPIError(409, "conflict", "User already exists")
        user = User(
            id=self.ids.new(),
            external_id=external_id,
            signed_up_at=signed_up_at or self.now(),
            profile={k: v for k, v in profile.items() if v is not None},
            metadata=metadata or {},
            to_be_retained=to_be_retained,
        )
        self.users[user.id] = user
        if external_id is not None:
            self.users_by_external_id[external_id] = user.id
        return user

    def find_user(self, user_id_or_external_id: str) -> User | None:
        user = self.users.get(user_id_or_external_id)
        if user is None:
            user_id = self.users_by_external_id.get(user_id_or_external_id)
            user = self.users.get(user_id) if user_id else None
        return user

    def get_user(self, user_id_or_external_id: str) -> User:
        user = self.find_user(user_id_or_external_id)
        if user is None:
            raise SunshineAPIError(404, "user_not_found", "User not found")
        return user

    def update_user(self, user: User, changes: Mapping[str, Any]) -> User:
        """Profile fields merge (``null`` removes one); metadata is replaced whole."""
        if "profile" in changes:
            for name, value in changes["profile"].items():
                if value is None:
                    user.profile.pop(name, None)
                else:
                    user.profile[name] = value
        if "metadata" in changes:
            user.metadata = changes["metadata"] or {}
        if changes.get("signedUpAt") is not None:
            user.signed_up_at = changes["signedUpAt"]
        if changes.get("toBeRetained") is not None:
            user.to_be_retained = changes["toBeRetained"]
        return user

    # -- conversations -------------------------------------------------------------------

    def create_conversation(
        self, *, user: User, fields: Mapping[str, Any]
    ) -> tuple[Conversation, list[Event]]:
        """A personal conversation for ``user``; the switchboard's default integration takes
        control, as it does for every new conversation."""
        now = self.now()
        has_default = any(
            c.is_default and user.id in c.user_ids for c in self.conversations.values()
        )
        conversation = Conversation(
            id=self.ids.new(),
            type="personal",
            created_at=now,
            last_updated_at=now,
            user_ids=[user.id],
            is_default=not has_default,
            display_name=fields.get("displayName"),
            description=fields.get("description"),
            icon_url=fields.get("iconUrl"),
            metadata=fields.get("metadata"),
        )
        if self.switchboard.enabled:
            conversation.active_id = self.switchboard.default_id
        self.conversations[conversation.id] = conversation
        payload = {
            "conversation": conversation_truncated(conversation, self.switchboard),
            "creationReason": "none",
            "source": {"type": "api:conversations"},
            "user": user_truncated(user),
        }
        return conversation, [self.event("conversation:create", payload, conversation)]

    def get_conversation(self, conversation_id: str, *, generic_404: bool = False) -> Conversation:
        """The conversation, or a 404. ``generic_404`` answers ``not_found``/"Resource not
        found" instead of ``conversation_not_found``, as the spec shows for List Messages."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            if generic_404:
                raise SunshineAPIError(404, "not_found", "Resource not found")
            raise SunshineAPIError(404, "conversation_not_found", "Conversation not found")
        return conversation

    def conversations_of(self, user: User) -> list[Conversation]:
        return [c for c in self.conversations.values() if user.id in c.user_ids]

    def update_conversation(self, conversation: Conversation, changes: Mapping[str, Any]) -> None:
        for name, attribute in (
            ("displayName", "display_name"),
            ("description", "description"),
            ("iconUrl", "icon_url"),
            ("metadata", "metadata"),
        ):
            if name in changes:
                setattr(conversation, attribute, changes[name])

    # -- messages ------------------------------------------------------------------------

    def resolve_author(self, conversation: Conversation, author: dict[str, Any]) -> User | None:
        """The participant a ``user`` author names (400 if it is not one); None for business."""
        if author["type"] != "user":
            return None
        reference = author.get("userId") or author.get("userExternalId")
        assert isinstance(reference, str)
        user = self.find_user(reference)
        if user is None or user.id not in conversation.user_ids:
            raise bad_request("The message author is not a participant of the conversation")
        return user

    def post_message(
        self,
        conversation: Conversation,
        *,
        author: dict[str, Any],
        content: dict[str, Any],
        source: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> tuple[Message, list[Event]]:
        limit = self.config.max_messages_per_conversation
        if len(conversation.messages) >= limit:
            raise SunshineAPIError(
                423, "locked", f"Message limit of {limit} per conversation reached."
            )
        user = self.resolve_author(conversation, author)
        stored_author = {k: v for k, v in author.items() if k not in ("userId", "userExternalId")}
        if user is not None:
            stored_author["userId"] = user.id
            stored_author.setdefault("displayName", _display_name(user))
        message = Message(
            id=self.ids.new(),
            received=self.now(),
            author=stored_author,
            content=content,
            source=source,
            metadata=metadata,
        )
        conversation.messages.append(message)
        conversation.last_updated_at = message.received
        if user is not None and conversation.active_id is None and self.switchboard.enabled:
            # After a release, the next user message hands the conversation to the default.
            conversation.active_id = self.switchboard.default_id
        payload = {
            "conversation": conversation_truncated(conversation, self.switchboard, metadata=False),
            "message": message_webhook(message, user),
        }
        return message, [self.event("conversation:message", payload, conversation)]

    # -- snapshot ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        switchboard = self.switchboard
        return {
            "users": [
                {"id": u.id, "externalId": u.external_id, "profile": u.profile}
                for u in self.users.values()
            ],
            "conversations": [
                {
                    "id": c.id,
                    "userIds": c.user_ids,
                    "metadata": c.metadata,
                    "active": _name(switchboard.find(c.active_id)),
                    "pending": _name(switchboard.find(c.pending_id)),
                    "messages": [
                        {
                            "id": m.id,
                            "author": m.author,
                            "content": m.content,
                            "source": m.source,
                        }
                        for m in c.messages
                    ],
                }
                for c in self.conversations.values()
            ],
        }


def _display_name(user: User) -> str:
    names = [user.profile.get("givenName"), user.profile.get("surname")]
    joined = " ".join(n for n in names if n)
    return joined or user.external_id or user.id


def _name(sbi: SwitchboardIntegration | None) -> str | None:
    return sbi.name if sbi else None
