"""The incremental exports beside the ticket export (``routes_misc``): ticket events
(time-based) and users (cursor-based), and ``tickets/show_many`` that a reader of ticket events
uses to see the tickets whole.

Official pages: "Incremental Ticket Event Export" (``GET /api/v2/incremental/ticket_events``,
operationId ``IncrementalTicketEvents``), "Incremental User Export, Cursor Based"
(``GET /api/v2/incremental/users/cursor``, ``IncrementalUserExportCursor``) and "Show Multiple
Tickets" (``GET /api/v2/tickets/show_many?ids=``, ``TicketsShowMany``, at most 100 ids), in the
Support OpenAPI spec, and "Using the Incremental Exports API" (time-based exports). What the
sandbox plays:

- both exports hold back the most recent minute and refuse a ``start_time`` within it (400
  "Too recent start_time"), are admin-only, and share the 10-requests-a-minute export limit
  with the ticket export;
- a ticket event is one update of a ticket (an audit): ``id``, ``ticket_id``, ``timestamp``,
  ``created_at``, ``updater_id``, ``via``, ``event_type`` "Audit" and ``child_events``. A
  child event names its field by key, not by a ``field_name`` as the audit API does: a status
  change is ``{"id", "status": "open", "previous_value": "new", "event_type": "Change"}``
  (the spec's description; a client issue, cloudbees-oss/zendesk-java-client#271, notes that
  "there's no field specifying what type the data is, only what type the event is"). Tag
  changes carry ``tags``, ``added_tags`` and ``removed_tags``; custom field changes name the
  field by its id (UNVERIFIED: no example found). With ``include=comment_events`` a comment is
  its whole object (``"event_type": "Comment"``, the spec's sideload example); without it,
  only ``comment_present`` and ``comment_public``;
- time-based paging: ``end_time`` is the time of the last event returned and ``next_page``
  starts there, so the next page repeats that second (a reader drops what it has, by id); a
  page never stops inside a second, so a second with more events than a page stays whole;
  ``end_of_stream`` once the rest fits in the page;
- the user export orders users by (update time, id) with an opaque cursor, like the ticket
  export.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandboxes.zendesk.core import ZendeskCore, json_response, origin
from sandboxes.zendesk.errors import bad_request, parameter_missing
from sandboxes.zendesk.render import iso, ticket_json, user_json
from sandboxes.zendesk.routes_misc import admit_export, decode_export_cursor, encode_export_cursor
from sandboxes.zendesk.routes_tickets import both
from sandboxes.zendesk.state import Audit, User

__all__ = ["export_routes"]

_SHOW_MANY = 100


class ExportRoutes:
    def __init__(self, core: ZendeskCore) -> None:
        self.core = core

    def routes(self) -> list[web.RouteDef]:
        return [
            *both("GET", "/api/v2/incremental/ticket_events", self.ticket_events),
            *both("GET", "/api/v2/incremental/users/cursor", self.users),
            *both("GET", "/api/v2/tickets/show_many", self.show_many),
        ]

    def _admit(self, request: web.Request) -> float:
        return admit_export(self.core, request)

    def _start(self, request: web.Request, horizon: float) -> int:
        start_time = request.query.get("start_time")
        if start_time is None:
            raise parameter_missing("start_time")
        try:
            start = int(start_time)
        except ValueError:
            raise bad_request("start_time must be a Unix epoch time") from None
        if start > horizon:
            raise bad_request("Too recent start_time. Use a start_time older than 1 minute")
        return start

    async def ticket_events(self, request: web.Request) -> web.StreamResponse:
        horizon = self._admit(request)
        start = self._start(request, horizon)
        comments = "comment_events" in request.query.get("include", "").split(",")
        size = self.core.config.incremental_export_page_size
        ready = sorted(
            (
                a
                for a in self.core.state.audits.values()
                if start <= a.created_at.timestamp() <= horizon
            ),
            key=lambda a: (a.created_at.timestamp(), a.id),
        )
        page = ready[:size]
        if page:  # never stop inside a second: the next page starts at end_time again
            last = int(page[-1].created_at.timestamp())
            page = [a for a in ready if int(a.created_at.timestamp()) <= last]
        end_time = int(page[-1].created_at.timestamp()) if page else start
        here = origin(request)
        include = "&include=comment_events" if comments else ""
        return json_response(
            {
                "ticket_events": [_ticket_event(a, comments=comments) for a in page],
                "next_page": f"{here}/api/v2/incremental/ticket_events.json?"
                f"start_time={end_time}{include}",
                "count": len(page),
                "end_of_stream": len(page) >= len(ready),
                "end_time": end_time,
            }
        )

    async def users(self, request: web.Request) -> web.StreamResponse:
        horizon = self._admit(request)
        cursor = request.query.get("cursor")
        after = (
            decode_export_cursor(cursor)
            if cursor
            else (self._start(request, horizon) - 1e-6, 2**63)
        )
        try:
            size = min(
                self.core.config.incremental_export_page_size,
                int(request.query.get("per_page", self.core.config.incremental_export_page_size)),
            )
        except ValueError:
            raise bad_request("per_page must be an integer") from None

        def position(u: User) -> tuple[float, int]:
            return (u.updated_at.timestamp(), u.id)

        ready = sorted(
            (
                u
                for u in self.core.state.users.values()
                if position(u) > after and u.updated_at.timestamp() <= horizon
            ),
            key=position,
        )
        page = ready[: max(1, size)]
        after_cursor = encode_export_cursor(position(page[-1]) if page else after)
        here = origin(request)
        return json_response(
            {
                "users": [user_json(u, origin=here) for u in page],
                "after_cursor": after_cursor,
                "after_url": f"{here}/api/v2/incremental/users/cursor.json?cursor={after_cursor}",
                "before_cursor": None,
                "before_url": None,
                "end_of_stream": len(ready) <= len(page),
            }
        )

    async def show_many(self, request: web.Request) -> web.StreamResponse:
        raw = request.query.get("ids", "")
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise bad_request("ids must be a comma-separated list of ticket ids") from None
        if not ids:
            raise parameter_missing("ids")
        if len(ids) > _SHOW_MANY:
            raise bad_request(f"at most {_SHOW_MANY} ids at a time")
        state, here = self.core.state, origin(request)
        found = [t for t in (state.live_ticket(i) for i in ids) if t is not None]
        return json_response(
            {
                "tickets": [ticket_json(t, origin=here, config=self.core.config) for t in found],
                "next_page": None,
                "previous_page": None,
                "count": len(found),
            }
        )


def _ticket_event(audit: Audit, *, comments: bool) -> dict[str, Any]:
    via = {"channel": audit.channel, "source": {"from": {}, "to": {}, "rel": None}}
    children = []
    for event in audit.events:
        child: dict[str, Any] = {"id": event["id"], "via": via, "via_reference_id": None}
        kind = event.get("type")
        if kind == "Comment":
            if comments:
                child |= {k: v for k, v in event.items() if k not in ("id",)}
                child["created_at"] = iso(audit.created_at)
                child["event_type"] = "Comment"
            else:
                child |= {
                    "comment_present": True,
                    "comment_public": bool(event.get("public")),
                    "event_type": "Comment",
                }
        elif kind in ("Create", "Change"):
            name, value = str(event["field_name"]), event.get("value")
            previous = event.get("previous_value")
            if name == "tags" and audit.tags is not None:
                value, previous = audit.tags
                child["added_tags"] = [t for t in value if t not in previous]
                child["removed_tags"] = [t for t in previous if t not in value]
            child[name] = value
            if kind == "Change":
                child["previous_value"] = previous
            child["event_type"] = kind
        else:
            continue
        children.append(child)
    return {
        "id": audit.id,
        "ticket_id": audit.ticket_id,
        "timestamp": int(audit.created_at.timestamp()),
        "created_at": iso(audit.created_at),
        "updater_id": audit.author_id,
        "via": audit.channel,
        "system": {},
        "metadata": {},
        "event_type": "Audit",
        "merged_ticket_ids": [],
        "child_events": children,
    }


def export_routes(core: ZendeskCore) -> list[web.RouteDef]:
    return ExportRoutes(core).routes()
