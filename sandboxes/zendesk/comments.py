"""Comments, which Zendesk only takes inside a ticket create or update.

``{"body" | "html_body", "public", "author_id", "uploads": [token]}``: ``public: false`` is
an internal note (end users cannot write one: theirs are always public), the author defaults
to the caller, upload tokens that are unknown, used or past their 60 minutes are skipped, and
a ticket takes at most ``max_comments`` (5000) comments, then 422.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.zendesk.config import ZendeskSandboxConfig
from sandboxes.zendesk.errors import record_invalid
from sandboxes.zendesk.events import Change
from sandboxes.zendesk.render import html_from_text, text_from_html
from sandboxes.zendesk.state import Audit, Comment, Ticket, User, ZendeskState

__all__ = ["Actor", "CommentDraft", "CommentWriter", "comment_event"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who is calling: the authenticated user, and the client they call with."""

    user: User
    client: str = ""


@dataclass
class CommentDraft:
    """A validated comment waiting for the rest of the write to validate too."""

    body: str
    html_body: str
    public: bool
    author: User
    upload_tokens: list[str]
    attachment_ids: list[int]


def comment_event(comment: Comment, author: User | None) -> dict[str, Any]:
    """``event.comment`` as the reference shows it for ``comment_added``: string ids, the
    visibility as ``is_public`` and the author with ``is_staff``."""
    body: dict[str, Any] = {
        "id": str(comment.id),
        "body": comment.body,
        "is_public": comment.public,
    }
    if author is not None:
        body["author"] = {
            "id": str(author.id),
            "is_staff": author.role != "end-user",
            "name": author.name,
        }
    return body


class CommentWriter:
    def __init__(
        self,
        state: ZendeskState,
        config: ZendeskSandboxConfig,
        clock: Clock,
        resolve_user: Callable[[Any, str], User],
    ) -> None:
        self._state = state
        self._config = config
        self._clock = clock
        self._resolve_user = resolve_user

    def draft(self, raw: Any, ticket: Ticket | None, actor: Actor) -> CommentDraft | None:
        """The comment a create/update asks for, validated; None for an empty body."""
        spec = raw if isinstance(raw, dict) else {"body": str(raw)}
        html_body = str(spec.get("html_body") or "")
        body = str(spec.get("body") or "") or text_from_html(html_body)
        if not body.strip():
            return None
        author = actor.user
        if spec.get("author_id") is not None:
            author = self._resolve_user(spec["author_id"], "Author")
        public = spec.get("public", True) not in (False, "false", 0)
        if author.role == "end-user":
            public = True  # end users cannot write internal notes
        if ticket is not None and len(ticket.comment_ids) >= self._config.max_comments:
            raise record_invalid(
                "base",
                f"Comments: this ticket has reached the limit of {self._config.max_comments} "
                "comments; no more can be added",
                "TooManyComments",
            )
        tokens = [str(t) for t in spec.get("uploads") or []]
        attachment_ids: list[int] = []
        now = self._clock.now()
        for token in tokens:
            upload = self._state.uploads.get(token)
            if upload is None or upload.consumed or upload.expires_at <= now:
                # UNVERIFIED: Zendesk answers 2xx and the attachment is simply missing.
                logger.info("zendesk sandbox ignored upload token=%s reason=invalid", token)
                continue
            attachment_ids += upload.attachment_ids
        return CommentDraft(
            body=body,
            html_body=html_body or html_from_text(body),
            public=public,
            author=author,
            upload_tokens=tokens,
            attachment_ids=attachment_ids,
        )

    def add(
        self, ticket: Ticket, draft: CommentDraft, audit: Audit, actor: Actor, now: datetime
    ) -> list[Change]:
        comment = Comment(
            id=self._state.next_id("comment"),
            ticket_id=ticket.id,
            audit_id=audit.id,
            author_id=draft.author.id,
            body=draft.body,
            html_body=draft.html_body,
            public=draft.public,
            created_at=now,
            attachment_ids=list(draft.attachment_ids),
            client=actor.client,
        )
        self._state.comments[comment.id] = comment
        ticket.comment_ids.append(comment.id)
        for token in draft.upload_tokens:
            if token in self._state.uploads:
                self._state.uploads[token].consumed = True
        audit.events.insert(
            0,
            {
                "id": comment.id,
                "type": "Comment",
                "author_id": comment.author_id,
                "body": comment.body,
                "html_body": comment.html_body,
                "plain_body": comment.body,
                "public": comment.public,
                "attachments": [],
                "audit_id": audit.id,
            },
        )
        events: list[Change] = [
            ("comment_added", {"comment": comment_event(comment, draft.author)})
        ]
        for attachment_id in comment.attachment_ids:
            attachment = self._state.attachments[attachment_id]
            events.append(
                (
                    "attachment_linked_to_comment",
                    {
                        "attachment": {
                            "id": str(attachment.id),
                            "content_type": attachment.content_type,
                            "filename": attachment.file_name,
                            "is_public": comment.public,
                        },
                        "comment": {"id": str(comment.id)},
                    },
                )
            )
        return events
