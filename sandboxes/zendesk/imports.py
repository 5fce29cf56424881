"""The Ticket Import API: ``POST /api/v2/imports/tickets`` (admins only), a ticket with its
whole conversation, each comment with its own author and time.

What Zendesk documents ("Ticket Import" in the API reference, ``TicketImportRequest`` in the
OpenAPI document), and how the sandbox follows it:

* the ticket takes the normal ticket properties plus ``created_at``, ``updated_at`` and
  ``solved_at``; a ticket time before 1970 is rounded up to 1970;
* ``comments`` is the conversation: each comment takes ``value``, ``body`` or ``html_body``,
  ``author_id``, ``public``, ``uploads`` and its own ``created_at``, which can be neither
  before 1970 nor in the future (the docs do not say how that is refused: 422 here,
  UNVERIFIED). A single ``comment`` is accepted too and goes last;
* no triggers run on an imported ticket, so no notifications; the sandbox runs no triggers
  at all. Event-subscription webhooks are not triggers: the sandbox sends ``created`` and one
  ``comment_added`` per comment, actor = the caller (UNVERIFIED;
  ``import_emits_events=False`` turns them off to rehearse the other reading);
* ``archive_immediately`` is accepted; the sandbox has no archive and keeps a closed import
  like any other ticket;
* the answer is 201 ``{"ticket"}`` (``TicketResponse``: no audit, so no comment ids; read them
  back with ``GET /api/v2/tickets/{id}/comments``). No ``Idempotency-Key``: Zendesk documents
  it for ticket create only, so an importer finds an earlier import by ``external_id``.

Comment authors default to the caller, as on create, and the ticket's ``via`` is ``api``
(both UNVERIFIED).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandboxes.zendesk.comments import CommentDraft
from sandboxes.zendesk.core import (
    ZendeskCore,
    json_response,
    origin,
    principal,
    read_json,
)
from sandboxes.zendesk.errors import bad_request, forbidden, record_invalid
from sandboxes.zendesk.events import Change
from sandboxes.zendesk.render import ticket_json
from sandboxes.zendesk.routes_tickets import both
from sandboxes.zendesk.state import Audit, Ticket, User
from sandboxes.zendesk.tickets import Actor, TicketOutcome

__all__ = ["TicketImporter", "import_routes"]

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Keys only the import takes; the rest of the ticket is validated like a create.
_IMPORT_ONLY = ("comments", "comment", "description", "created_at", "updated_at", "solved_at")
_CREATE_AUDIT_FIELDS = ("subject", "status", "priority", "type", "requester_id", "assignee_id")


def _parse_time(value: Any, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise record_invalid(label.lower().replace(" ", "_"), f"{label}: is invalid") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class TicketImporter:
    """Builds an imported ticket with the ticket service's own validation (package-internal
    helpers of :class:`~sandboxes.zendesk.tickets.TicketService`), so an import and
    a create refuse the same bad values the same way."""

    def __init__(self, core: ZendeskCore) -> None:
        self._core = core

    def _comment_time(self, raw: Any, now: datetime, position: int) -> datetime:
        if raw in (None, ""):
            return now
        moment = _parse_time(raw, "Created at")
        if moment < EPOCH or moment > now:
            raise record_invalid(
                "comments",
                f"Comments: comment {position} created_at must be between 1970 and now",
            )
        return moment

    def _comments(
        self, payload: dict[str, Any], actor: Actor, now: datetime
    ) -> list[tuple[CommentDraft, datetime]]:
        raw_comments = payload.get("comments") or []
        if not isinstance(raw_comments, list):
            raise record_invalid("comments", "Comments: must be a list of comments")
        if payload.get("comment") is not None:
            raw_comments = [*raw_comments, payload["comment"]]
        writer = self._core.tickets._comments
        drafts: list[tuple[CommentDraft, datetime]] = []
        for position, raw in enumerate(raw_comments, start=1):
            spec = dict(raw) if isinstance(raw, dict) else {"body": str(raw)}
            if not spec.get("body") and not spec.get("html_body") and spec.get("value"):
                spec["body"] = spec["value"]  # the import's own spelling of the body
            draft = writer.draft(spec, None, actor)
            if draft is None:
                raise record_invalid(
                    "comments", f"Comments: comment {position} cannot be blank", "BlankValue"
                )
            drafts.append((draft, self._comment_time(spec.get("created_at"), now, position)))
        if not drafts:
            raise record_invalid("description", "Description: cannot be blank", "BlankValue")
        limit = self._core.config.max_comments
        if len(drafts) > limit:
            raise record_invalid(
                "base",
                f"Comments: a ticket takes at most {limit} comments",
                "TooManyComments",
            )
        return drafts

    def import_ticket(self, payload: dict[str, Any], actor: Actor) -> TicketOutcome:
        core, service, state = self._core, self._core.tickets, self._core.state
        now = core.clock.now()
        comments = self._comments(payload, actor, now)
        base = {k: v for k, v in payload.items() if k not in _IMPORT_ONLY}
        draft = service._draft(base, None, actor)
        created_at = now
        if payload.get("created_at"):
            created_at = max(EPOCH, _parse_time(payload["created_at"], "Created at"))
        updated_at = now
        if payload.get("updated_at"):
            updated_at = max(EPOCH, _parse_time(payload["updated_at"], "Updated at"))
        if payload.get("solved_at"):
            _parse_time(payload["solved_at"], "Solved at")  # validated; the sandbox keeps no SLA
        user_events: list[tuple[User, list[Change]]] = []
        requester = service._resolve_requester(draft, actor, user_events)
        first = comments[0][0]
        values = draft.values
        ticket = Ticket(
            id=state.next_ticket_id(),
            subject=values.pop("subject", "") or first.body[:80],
            description=first.body,
            status=values.pop("status", None) or "new",
            requester_id=requester.id,
            submitter_id=values.pop("submitter_id", first.author.id),
            created_at=created_at,
            updated_at=updated_at,
            is_public=first.public,
        )
        external_id = values.pop("external_id", None)
        for name, value in values.items():
            setattr(ticket, name, value)
        state.set_ticket_external_id(ticket, external_id)
        if ticket.status == "new" and ticket.assignee_id is not None:
            ticket.status = "open"
        state.tickets[ticket.id] = ticket
        events: list[Change] = [("created", {})]
        audits: list[Audit] = []
        for comment, at in comments:
            # One audit per comment, dated like the comment, as an imported history reads.
            audit = service._new_audit(ticket, actor, at)
            if not audits:
                for name in _CREATE_AUDIT_FIELDS:
                    audit.events.append(service._audit_event("Create", name, getattr(ticket, name)))
            audits.append(audit)
            events += service._comments.add(ticket, comment, audit, actor, at)
        logger.info(
            "zendesk sandbox ticket imported id=%s comments=%s actor=%s",
            ticket.id,
            len(comments),
            actor.user.id,
        )
        if not core.config.import_emits_events:
            events = []
        return TicketOutcome(ticket, audits[0], events, user_events)


class ImportRoutes:
    def __init__(self, core: ZendeskCore) -> None:
        self.core = core
        self.importer = TicketImporter(core)

    def routes(self) -> list[web.RouteDef]:
        return both("POST", "/api/v2/imports/tickets", self.import_ticket)

    async def import_ticket(self, request: web.Request) -> web.StreamResponse:
        if principal(request).user.role != "admin":
            raise forbidden()
        archive = request.query.get("archive_immediately", "false").lower()
        if archive not in ("true", "false"):
            raise bad_request("archive_immediately must be true or false")
        payload = await read_json(request, "ticket")
        actor = self.core.actor(request)
        outcome = self.importer.import_ticket(payload, actor)
        here = origin(request)
        response = json_response(
            {"ticket": ticket_json(outcome.ticket, origin=here, config=self.core.config)},
            status=201,
            headers={"Location": f"{here}/api/v2/tickets/{outcome.ticket.id}.json"},
        )
        await self.core.publish(outcome, actor)
        return response


def import_routes(core: ZendeskCore) -> list[web.RouteDef]:
    return ImportRoutes(core).routes()
