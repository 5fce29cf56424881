"""Zendesk tickets by polling: the cursor-based incremental ticket export as a ``Source``.

Official pages: "Incremental Ticket Export, Cursor Based" (``GET
/api/v2/incremental/tickets/cursor``, https://developer.zendesk.com/api-reference/ticketing/
ticket-management/incremental_exports/#incremental-ticket-export-cursor-based, also in the
Support OpenAPI spec, operationId ``IncrementalTicketExportCursor``) and "Using the
Incremental Exports API" (https://developer.zendesk.com/documentation/ticketing/
managing-tickets/using-the-incremental-export-api). What this module relies on:

- the first request takes ``start_time`` (epoch seconds), later ones the ``after_cursor`` of
  the previous page; ``end_of_stream`` says the export has nothing newer for now (spec);
- a ticket appears once per export position with its state at export time: two changes
  between two polls are one row (the export is a state feed, not a change log; deleted
  tickets come with status ``deleted``);
- data of the most recent minute is held back, and a ``start_time`` within it is refused
  with a 400 ("Too recent start_time"), so a first run starts at least 61 s back;
- admins only; incremental exports have their own limit of 10 requests a minute
  (High Volume add-on: 30) on top of the account's, hence this source's own budget.

Where it starts on a first run (no stored position): ``start_lookback_seconds`` (1 hour by
default) before now. Its position is ``{"cursor": after_cursor}``; a cursor is Zendesk's and
opaque. Each exported ticket becomes one raw delivery whose body is the ticket's JSON exactly
as exported, marked with the ``deskstream-source`` header (a header webhook ingest never keeps,
so no webhook can pass for an exported ticket), whose id is ``tickets:<id>@<updated_at>``: the
same version read twice is the same delivery, hence the same canonical event id. The
normaliser reads it as an observation of the ticket (``connectors.zendesk.normalize``).

This is also the polling fallback for webhooks Zendesk dropped (its circuit breaker, a worker
down past its retries): every ticket that changed reaches ``deskstream.raw`` within a poll
interval plus the export's minute of lag.

UNVERIFIED: whether incremental export requests also count against the account's per-minute
limit (searched the rate-limits page and the export guide; they name the export's own limit
only). This source keeps its own budget and honours any 429's Retry-After either way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.base.http import platform_http
from connectors.base.ratelimit import RateBudget
from connectors.base.settings import ConnectorSettings, SourceSettings
from connectors.base.source import SOURCE_HEADER, Position, RawRecord, Source, SourceBatch
from connectors.zendesk.client import ExportPage, ZendeskClient
from connectors.zendesk.models import parse_time
from schemas.errors import ConfigurationError
from schemas.models import Platform, RawDelivery

__all__ = [
    "EXPORTED_TICKET",
    "EXPORT_LAG_SECONDS",
    "ZendeskIncrementalTickets",
]

#: the ``SOURCE_HEADER`` value for an exported ticket
EXPORTED_TICKET = "zendesk.incremental_tickets"
#: the export holds back its most recent minute and refuses a start_time within it
EXPORT_LAG_SECONDS = 60
#: "Incremental exports: 10 requests a minute" (Rate limits page, endpoint limits)
_EXPORT_REQUESTS_PER_MINUTE = 10
_MAX_PER_PAGE = 1000


class ZendeskIncrementalTickets(Source):
    """Every ticket version the incremental export shows, as raw deliveries."""

    kind = "tickets"

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        source: SourceSettings,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.api_base_url:
            raise ConfigurationError(
                f"connector {connector_id!r} has no api_base_url, so its ticket export cannot "
                f"be read; set DESKSTREAM_CONNECTORS__{connector_id}__API_BASE_URL"
            )
        self.connector_id = connector_id
        self._settings = source
        self._clock = clock
        self._owns_http = http is None
        self._http = http or platform_http(
            httpx.Timeout(30.0, connect=10.0), base_url=settings.api_base_url
        )
        limit = source.requests_per_minute or _EXPORT_REQUESTS_PER_MINUTE
        self.client = ZendeskClient(self._http, settings=settings, budget=RateBudget(limit, 60.0))

    @property
    def name(self) -> str:
        return f"{self.connector_id}.{self.kind}"

    def first_start_time(self) -> int:
        """Where a first run starts: the lookback before now, never inside the held-back
        minute (Zendesk refuses that start_time)."""
        back = max(self._settings.start_lookback_seconds, EXPORT_LAG_SECONDS + 1)
        return int(self._clock()) - back

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        cursor = position.get("cursor") if position else None
        per_page = min(self._settings.batch_size, _MAX_PER_PAGE)
        while True:
            if isinstance(cursor, str) and cursor:
                page = await self.client.incremental_tickets(cursor=cursor, per_page=per_page)
            else:
                start = self.first_start_time()
                page = await self.client.incremental_tickets(start_time=start, per_page=per_page)
            yield self._batch(page)
            cursor = page.after_cursor
            if page.end_of_stream:
                await asyncio.sleep(self._settings.poll_seconds)

    def _batch(self, page: ExportPage) -> SourceBatch:
        now = datetime.fromtimestamp(self._clock(), UTC)
        records = [self._record(ticket, now) for ticket in page.tickets]
        times = [t for t in (_updated_at(ticket) for ticket in page.tickets) if t is not None]
        return SourceBatch(
            records=records,
            position={"cursor": page.after_cursor},
            position_time=max(times) if times else None,
            caught_up=page.end_of_stream,
            detail=f"{len(records)} tickets",
        )

    def _record(self, ticket: dict[str, Any], now: datetime) -> RawRecord:
        ticket_id = str(ticket.get("id"))
        version = str(ticket.get("updated_at") or "")
        delivery = RawDelivery(
            delivery_id=f"{self.kind}:{ticket_id}@{version}",
            connector_id=self.connector_id,
            platform=Platform.ZENDESK,
            received_at=now,
            headers={SOURCE_HEADER: EXPORTED_TICKET},
            body=json.dumps(ticket, separators=(",", ":")).encode(),
            content_type="application/json",
            # Read from the platform's API with our own credentials: the authenticity a
            # webhook's signature proves.
            signature_verified=True,
        )
        # The key webhook ingest gives a ticket's deliveries: one partition, in order.
        return RawRecord(key=f"{self.connector_id}:case:{ticket_id}", delivery=delivery)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def _updated_at(ticket: dict[str, Any]) -> datetime | None:
    value = ticket.get("updated_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
