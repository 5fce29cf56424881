"""Tickets: create (with ``Idempotency-Key``), show, update, delete, list, comments, the bulk
``create_many``/``update_many`` jobs and their job statuses, making a comment private, and
deleting soft-deleted tickets for good (``deleted_tickets/{id}`` and ``destroy_many``).

Every path also answers with a ``.json`` suffix, as Zendesk's does (zenpy calls those).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandboxes.zendesk.core import ZendeskCore, json_response, origin, read_json
from sandboxes.zendesk.errors import (
    ZendeskError,
    bad_request,
    not_found,
    rate_limited,
    ticket_update_limited,
)
from sandboxes.zendesk.idempotency import LOOKUP_HEADER, fingerprint
from sandboxes.zendesk.pagination import paginate
from sandboxes.zendesk.render import audit_json, comment_json, job_status_json, ticket_json
from sandboxes.zendesk.state import JobStatus, Ticket
from sandboxes.zendesk.tickets import Actor, TicketOutcome

__all__ = ["both", "ticket_routes"]

logger = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_TICKET = r"{ticket_id:\d+}"


def both(method: str, path: str, handler: _Handler) -> list[web.RouteDef]:
    """The route with and without Zendesk's optional ``.json`` suffix."""
    return [web.route(method, path, handler), web.route(method, path + ".json", handler)]


class TicketRoutes:
    def __init__(self, core: ZendeskCore) -> None:
        self.core = core

    def routes(self) -> list[web.RouteDef]:
        return [
            *both("POST", "/api/v2/tickets", self.create),
            *both("GET", "/api/v2/tickets", self.list_tickets),
            *both("POST", "/api/v2/tickets/create_many", self.create_many),
            *both("PUT", "/api/v2/tickets/update_many", self.update_many),
            *both("GET", f"/api/v2/tickets/{_TICKET}", self.show),
            *both("PUT", f"/api/v2/tickets/{_TICKET}", self.update),
            *both("DELETE", f"/api/v2/tickets/{_TICKET}", self.delete),
            *both("GET", f"/api/v2/tickets/{_TICKET}/comments", self.comments),
            *both(
                "PUT",
                rf"/api/v2/tickets/{_TICKET}/comments/{{comment_id:\d+}}/make_private",
                self.make_private,
            ),
            *both("DELETE", "/api/v2/deleted_tickets/destroy_many", self.destroy_many),
            *both("DELETE", f"/api/v2/deleted_tickets/{_TICKET}", self.delete_permanently),
            *both("GET", f"/api/v2/tickets/{_TICKET}/audits", self.audits),
            *both("GET", r"/api/v2/job_statuses/{job_id:[0-9a-f]+}", self.job_status),
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _ticket(self, request: web.Request) -> Ticket:
        ticket = self.core.state.live_ticket(int(request.match_info["ticket_id"]))
        if ticket is None:
            raise not_found()
        return ticket

    def _body(self, outcome: TicketOutcome, request: web.Request) -> dict[str, Any]:
        return {
            "ticket": ticket_json(outcome.ticket, origin=origin(request), config=self.core.config),
            "audit": audit_json(outcome.audit),
        }

    # -- single tickets --------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        payload = await read_json(request, "ticket")
        key = request.headers.get("Idempotency-Key")
        core = self.core
        if key is not None:
            if not key or len(key) > 255:
                raise bad_request("Idempotency-Key must be 1 to 255 characters")
            request_fingerprint = fingerprint(payload)
            cached = core.idempotency.lookup(key, request_fingerprint)
            if cached is not None:
                core.counters["idempotency_hit"] += 1
                return web.Response(
                    status=cached.status,
                    body=cached.body,
                    content_type="application/json",
                    charset="utf-8",
                    headers={**cached.headers, LOOKUP_HEADER: "hit"},
                )
        actor = core.actor(request)
        outcome = core.tickets.create(payload, actor)
        location = f"{origin(request)}/api/v2/tickets/{outcome.ticket.id}.json"
        response = json_response(
            self._body(outcome, request), status=201, headers={"Location": location}
        )
        if key is not None:
            assert isinstance(response.body, bytes)
            core.idempotency.store(
                key, request_fingerprint, 201, response.body, {"Location": location}
            )
            response.headers[LOOKUP_HEADER] = "miss"
        logger.info(
            "zendesk sandbox ticket created id=%s actor=%s", outcome.ticket.id, actor.user.id
        )
        await core.publish(outcome, actor)
        return response

    async def show(self, request: web.Request) -> web.StreamResponse:
        ticket = self._ticket(request)
        return json_response(
            {"ticket": ticket_json(ticket, origin=origin(request), config=self.core.config)}
        )

    async def update(self, request: web.Request) -> web.StreamResponse:
        ticket = self._ticket(request)
        payload = await read_json(request, "ticket")
        actor = self.core.actor(request)
        account = self.core.ticket_update_account_limiter.hit(str(self.core.config.account_id))
        if not account.allowed:
            self.core.counters["rate_limited_ticket_update_account"] += 1
            raise rate_limited(
                account.retry_after,
                description="Number of allowed Update Ticket requests per minute exceeded",
            )
        decision = self.core.ticket_update_limiter.hit(f"{actor.user.id}:{ticket.id}")
        if not decision.allowed:
            self.core.counters["rate_limited_ticket_update"] += 1
            raise ticket_update_limited(decision.retry_after)
        outcome = self.core.tickets.update(ticket, payload, actor)
        await self.core.publish(outcome, actor)
        return json_response(self._body(outcome, request))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        ticket = self._ticket(request)
        actor = self.core.actor(request)
        events = self.core.tickets.delete(ticket)
        await self.core.publisher.ticket_events(ticket, actor.user.id, events)
        return web.Response(status=204)

    async def make_private(self, request: web.Request) -> web.StreamResponse:
        """200 with an empty body, as the spec's ``MakeTicketCommentPrivate`` answers."""
        ticket = self._ticket(request)
        comment = self.core.state.comments.get(int(request.match_info["comment_id"]))
        if comment is None or comment.ticket_id != ticket.id:
            raise not_found()
        actor = self.core.actor(request)
        events = self.core.tickets.make_private(ticket, comment, actor)
        await self.core.publisher.ticket_events(ticket, actor.user.id, events)
        return web.Response(status=200, text="", content_type="application/json")

    def _soft_deleted(self, ticket_id: int) -> Ticket | None:
        ticket = self.core.state.tickets.get(ticket_id)
        return ticket if ticket is not None and ticket.deleted else None

    async def _forget(self, ticket: Ticket, actor: Actor) -> None:
        events = self.core.tickets.delete_permanently(ticket)
        # The state no longer holds the ticket; the event's detail is this last snapshot.
        await self.core.publisher.ticket_events(ticket, actor.user.id, events)

    async def delete_permanently(self, request: web.Request) -> web.StreamResponse:
        """``DeleteTicketPermanently``: a job status (``queued``); only a soft-deleted ticket
        can be deleted for good, any other id is a 404 (UNVERIFIED for a live ticket)."""
        ticket = self._soft_deleted(int(request.match_info["ticket_id"]))
        if ticket is None:
            raise not_found()
        actor = self.core.actor(request)
        await self._forget(ticket, actor)
        job = self._job("Permanent Ticket Deletion", [{"id": ticket.id, "success": True}])
        return json_response(
            {"job_status": job_status_json(job, origin=origin(request), completed=False)}
        )

    async def destroy_many(self, request: web.Request) -> web.StreamResponse:
        """``BulkPermanentlyDeleteTickets`` (``?ids=1,2``, up to 100): one failing id does not
        stop the others, as the spec says; each one deleted sends its own event."""
        raw = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
        if not raw:
            raise bad_request("Parameter ids is required")
        if len(raw) > 100:
            raise bad_request("Too many tickets: at most 100 per request")
        actor = self.core.actor(request)
        results: list[dict[str, Any]] = []
        for value in raw:
            ticket = self._soft_deleted(int(value)) if value.isdigit() else None
            if ticket is None:
                failed = int(value) if value.isdigit() else value
                results.append({"id": failed, "success": False, "error": "RecordNotFound"})
                continue
            await self._forget(ticket, actor)
            results.append({"id": ticket.id, "success": True})
        job = self._job("Permanent Ticket Deletion", results)
        return json_response(
            {"job_status": job_status_json(job, origin=origin(request), completed=False)}
        )

    async def list_tickets(self, request: web.Request) -> web.StreamResponse:
        state = self.core.state
        external_id = request.query.get("external_id")
        if external_id is not None:
            tickets = state.tickets_by_external_id(external_id)
        else:
            tickets = [t for t in state.tickets.values() if not t.deleted]
        tickets.sort(key=lambda t: t.id)
        here, config = origin(request), self.core.config
        return json_response(
            paginate(
                request,
                tickets,
                name="tickets",
                key=lambda t: t.id,
                render=lambda t: ticket_json(t, origin=here, config=config),
            )
        )

    async def comments(self, request: web.Request) -> web.StreamResponse:
        ticket = self._ticket(request)
        state = self.core.state
        comments = [state.comments[c] for c in ticket.comment_ids]
        if request.query.get("sort_order") == "desc" or request.query.get("sort") == "-created_at":
            comments.reverse()
        here = origin(request)
        return json_response(
            paginate(
                request,
                comments,
                name="comments",
                key=lambda c: c.id,
                render=lambda c: comment_json(c, state, origin=here),
            )
        )

    async def audits(self, request: web.Request) -> web.StreamResponse:
        ticket = self._ticket(request)
        audits = [self.core.state.audits[a] for a in ticket.audit_ids]
        return json_response(
            paginate(request, audits, name="audits", key=lambda a: a.id, render=audit_json)
        )

    # -- bulk jobs -------------------------------------------------------------------------

    def _job(self, job_type: str, results: list[dict[str, Any]]) -> JobStatus:
        job = JobStatus(
            id=f"{self.core.rng.getrandbits(128):032x}",
            job_type=job_type,
            total=len(results),
            results=results,
        )
        self.core.state.jobs[job.id] = job
        return job

    def _check_bulk(self, items: list[Any]) -> None:
        if len(items) > self.core.config.max_bulk:
            raise bad_request(f"Too many tickets: at most {self.core.config.max_bulk} per request")

    async def create_many(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        items = body.get("tickets")
        if not isinstance(items, list):
            raise bad_request("Parameter tickets is required")
        self._check_bulk(items)
        actor = self.core.actor(request)
        results: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                outcome = self.core.tickets.create(dict(item), actor)
            except ZendeskError as error:
                results.append(_failure(index, None, error))
                continue
            results.append({"index": index, "id": outcome.ticket.id})
            await self.core.publish(outcome, actor)
        job = self._job("Bulk Create Job", results)
        return json_response(
            {"job_status": job_status_json(job, origin=origin(request), completed=False)}
        )

    async def update_many(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        actor = self.core.actor(request)
        pairs: list[tuple[Any, dict[str, Any]]]
        if request.query.get("ids"):
            change = body.get("ticket")
            if not isinstance(change, dict):
                raise bad_request("Parameter ticket is required")
            ids = [i for i in request.query["ids"].split(",") if i.strip()]
            pairs = [(i.strip(), dict(change)) for i in ids]
        elif isinstance(body.get("tickets"), list):
            pairs = [
                (t.get("id"), {k: v for k, v in t.items() if k != "id"})
                for t in body["tickets"]
                if isinstance(t, dict)
            ]
        else:
            raise bad_request("Parameter tickets or ids is required")
        self._check_bulk(pairs)
        results = [await self._update_one(raw_id, change, actor) for raw_id, change in pairs]
        job = self._job("Bulk Update Job", results)
        return json_response(
            {"job_status": job_status_json(job, origin=origin(request), completed=False)}
        )

    async def _update_one(
        self, raw_id: Any, change: dict[str, Any], actor: Actor
    ) -> dict[str, Any]:
        try:
            ticket_id = int(raw_id)
        except (TypeError, ValueError):
            return _failure(None, None, not_found())
        ticket = self.core.state.live_ticket(ticket_id)
        if ticket is None:
            return _failure(None, ticket_id, not_found())
        try:
            outcome = self.core.tickets.update(ticket, change, actor)
        except ZendeskError as error:
            return _failure(None, ticket_id, error)
        await self.core.publish(outcome, actor)
        return {"id": ticket_id, "action": "update", "success": True, "status": "Updated"}

    async def job_status(self, request: web.Request) -> web.StreamResponse:
        job = self.core.state.jobs.get(request.match_info["job_id"])
        if job is None:
            raise not_found()
        job.polls += 1
        return json_response(
            {"job_status": job_status_json(job, origin=origin(request), completed=True)}
        )


def _failure(index: int | None, ticket_id: int | None, error: ZendeskError) -> dict[str, Any]:
    body = error.body if isinstance(error.body, dict) else {"error": str(error.body)}
    result: dict[str, Any] = {
        "action": "update" if index is None else "create",
        "success": False,
        "error": str(body.get("error", "")),
        "details": str(body.get("details") or body.get("description") or ""),
    }
    if index is not None:
        result["index"] = index
    if ticket_id is not None:
        result["id"] = ticket_id
    return result


def ticket_routes(core: ZendeskCore) -> list[web.RouteDef]:
    return TicketRoutes(core).routes()
