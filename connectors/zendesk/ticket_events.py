"""Zendesk ticket updates and users by polling: the incremental ticket event export and the
cursor-based user export as ``Source``s (kinds ``ticket_events`` and ``users``), the polling
fallback for webhooks Zendesk dropped (its circuit breaker, a deactivated webhook, a worker
down past the retries) and the only feed of a connector in mode ``polling``.

Official pages: "Incremental Ticket Event Export" (``GET /api/v2/incremental/ticket_events``,
time-based, ``include=comment_events`` for the comments whole) and "Incremental User Export,
Cursor Based" (``GET /api/v2/incremental/users/cursor``), in the Support OpenAPI spec, and
"Using the Incremental Exports API". What this module relies on:

- both hold back the most recent minute and refuse a ``start_time`` inside it, so a first run
  starts at least 61 s back (``start_lookback_seconds``, an hour by default);
- the ticket event export is time-based: a page ends at ``end_time``, the time of its last
  event, and the next page starts there again, so the events of that second come twice: the
  position keeps their ids (``{"start_time", "seen"}``) and drops them the second time;
- the user export is cursor-based (``{"cursor"}``), as the ticket export;
- incremental exports have their own limit, 10 requests a minute for the account: each feed
  keeps a budget of its own (``requests_per_minute``, 5 each by default, so two fit), and the
  ticket reads beside the export (``GET /api/v2/tickets/show_many``, 100 a call) count on the
  account's limit, through a ``YieldingBudget`` that gives the sinks priority.

A ticket event's delivery body is ``{"ticket_event": <the event>, "ticket": <the ticket
now>}``, id ``ticket_events:<event id>`` (one per update: read twice, the same delivery); a
user's is ``{"user": <the user>, "changed": [<fields that differ from the previous read>]}``,
id ``users:<id>@<updated_at>``. ``connectors.zendesk.polled`` turns them into events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.base.ratelimit import RateBudget, YieldingBudget, registered_budget
from connectors.base.source import SOURCE_HEADER, Position, RawRecord, SourceBatch
from connectors.zendesk.client import DEFAULT_RATE_LIMIT_PER_MINUTE, ZendeskClient
from connectors.zendesk.incremental import ZendeskExport
from connectors.zendesk.models import parse_time
from connectors.zendesk.polled import POLLED_TICKET_EVENT, POLLED_USER, user_digests
from schemas.models import Platform, RawDelivery

__all__ = ["ZendeskBackfill", "ZendeskTicketEvents", "ZendeskUsers"]

#: each export feed's share of the account's 10 export requests a minute
_EXPORT_REQUESTS_PER_MINUTE = 5
#: users whose fields a poll remembers (hashed, in the position)
_MEMORY_USERS = 2000


class _Export(ZendeskExport):
    kind: ClassVar[str]
    export_budget = _EXPORT_REQUESTS_PER_MINUTE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        account = self._connector.rate_limit_per_minute or DEFAULT_RATE_LIMIT_PER_MINUTE
        self._account_limit = account
        connector_id = self.connector_id
        self.budget = YieldingBudget(
            max(1, int(account * self._settings.budget_share)),
            60.0,
            shared=lambda: registered_budget(connector_id),
        )
        #: reads on the account's general limit (not the export's)
        self.reads = ZendeskClient(self._http, settings=self._connector, budget=self.budget)

    def account_view(self) -> RateBudget:
        """A budget of the account's whole limit, for a process without the connector's sink
        (``deskstream backfill``): registered, the answers' rate-limit headers keep it at what
        Zendesk says is left, and this source's reads yield to it."""
        return RateBudget(self._account_limit, 60.0)

    def _delivery(self, delivery_id: str, body: dict[str, Any]) -> RawDelivery:
        return RawDelivery(
            delivery_id=delivery_id,
            connector_id=self.connector_id,
            platform=Platform.ZENDESK,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            headers={
                SOURCE_HEADER: POLLED_TICKET_EVENT if self.kind == "ticket_events" else POLLED_USER
            },
            body=json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json",
            # Read from the platform's API with our own credentials: what a signature proves.
            signature_verified=True,
        )


class ZendeskTicketEvents(_Export):
    """Every ticket update the export shows, with its ticket, as raw deliveries."""

    kind = "ticket_events"

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        stored = position or {}
        start = int(stored.get("start_time") or self.first_start_time())
        seen = {str(i) for i in stored.get("seen") or []}
        while True:
            page = await self.client.incremental_ticket_events(start_time=start)
            fresh = [e for e in page.events if str(e.get("id")) not in seen]
            ids = [str(e["ticket_id"]) for e in fresh if e.get("ticket_id") is not None]
            tickets = await self.reads.tickets_json(ids) if ids else {}
            records = [
                self._record(event, tickets[str(event["ticket_id"])])
                for event in fresh
                # a deleted ticket: nothing to sync; a backfill's filter: not asked for
                if str(event.get("ticket_id")) in tickets
                and self._keep(tickets[str(event["ticket_id"])])
            ]
            last_second = [e for e in page.events if _second(e) == page.end_time]
            seen = {str(e.get("id")) for e in last_second} | (
                seen if page.end_time == start else set()
            )
            start = page.end_time
            times = [t for t in (_at(e) for e in fresh) if t is not None]
            yield SourceBatch(
                records=records,
                position={"start_time": start, "seen": sorted(seen)},
                position_time=max(times) if times else None,
                caught_up=page.end_of_stream,
                detail=f"{len(records)} ticket events of {len(page.events)} exported",
            )
            if page.end_of_stream:
                await asyncio.sleep(self._settings.poll_seconds)

    def _keep(self, ticket: dict[str, Any]) -> bool:
        return True

    def _record(self, event: dict[str, Any], ticket: dict[str, Any]) -> RawRecord:
        delivery = self._delivery(
            f"{self.kind}:{event.get('id')}", {"ticket_event": event, "ticket": ticket}
        )
        key = f"{self.connector_id}:case:{event.get('ticket_id')}"
        return RawRecord(key=key, delivery=delivery, changed_at=_at(event))


class ZendeskUsers(_Export):
    """Every user version the export shows, naming what changed since the previous read."""

    kind = "users"

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        stored = position or {}
        cursor = stored.get("cursor")
        memory: dict[str, dict[str, str]] = dict(stored.get("memory") or {})
        per_page = min(self._settings.batch_size, 1000)
        while True:
            if isinstance(cursor, str) and cursor:
                page = await self.client.incremental_users(cursor=cursor, per_page=per_page)
            else:
                start = self.first_start_time()
                page = await self.client.incremental_users(start_time=start, per_page=per_page)
            records = []
            for user in page.tickets:
                digests = user_digests(user)
                before = memory.pop(str(user.get("id")), None)
                changed = (
                    sorted(k for k, v in digests.items() if before.get(k) != v) if before else []
                )
                memory[str(user.get("id"))] = digests  # most recent last
                records.append(self._record(user, changed))
            while len(memory) > _MEMORY_USERS:
                memory.pop(next(iter(memory)))
            cursor = page.after_cursor
            times = [t for t in (_updated(u) for u in page.tickets) if t is not None]
            yield SourceBatch(
                records=records,
                position={"cursor": cursor, "memory": memory},
                position_time=max(times) if times else None,
                caught_up=page.end_of_stream,
                detail=f"{len(records)} users",
            )
            if page.end_of_stream:
                await asyncio.sleep(self._settings.poll_seconds)

    def _record(self, user: dict[str, Any], changed: list[str]) -> RawRecord:
        version = user.get("updated_at") or ""
        delivery = self._delivery(
            f"{self.kind}:{user.get('id')}@{version}", {"user": user, "changed": changed}
        )
        key = f"{self.connector_id}:contact:{user.get('id')}"
        return RawRecord(key=key, delivery=delivery, changed_at=_updated(user))


def _at(event: dict[str, Any]) -> datetime | None:
    value = event.get("created_at")
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _second(event: dict[str, Any]) -> int | None:
    stamp = event.get("timestamp")
    if isinstance(stamp, int):
        return stamp
    at = _at(event)
    return int(at.timestamp()) if at else None


def _updated(user: dict[str, Any]) -> datetime | None:
    value = user.get("updated_at")
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


class ZendeskBackfill(ZendeskTicketEvents):
    """Tickets' history read once, for ``deskstream backfill``: every ticket event from
    ``since`` (comments whole), of the tickets matching the operator's filters now
    (``status=open``: a filter names a field of the ticket as the API shows it), sent as the
    ticket event poll sends them (the same ids), ending once the export has caught up."""

    _since: int | None = None
    _filters: tuple[tuple[str, str], ...] = ()

    def configure(self, *, since: int | None, filters: Mapping[str, str]) -> None:
        self._since = since
        self._filters = tuple(sorted(filters.items()))

    def first_start_time(self) -> int:
        return self._since if self._since is not None else super().first_start_time()

    def _keep(self, ticket: dict[str, Any]) -> bool:
        return all(str(ticket.get(k)) == v for k, v in self._filters)

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        async for batch in super().batches(position):
            yield batch
            if batch.caught_up:
                return
