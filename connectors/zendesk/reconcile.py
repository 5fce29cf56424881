"""Zendesk reconciliation as a ``Source`` (kind ``reconcile``): every ``poll_seconds`` the
tickets modified in the last ``window_seconds`` are re-read through the cursor-based ticket
export (``connectors.zendesk.incremental``) and sent as reconciliations
(``connectors.base.source.RECONCILE_EVENT_TYPE``): the sync stage compares every synced field
with what the link believes and repairs what drifted, through the normal planner path, audited
``reconciled`` with the cause it can tell (a change no webhook reported, a manual change of a
field another platform owns). A ticket version already sent is not sent again (its id and
``updated_at`` are remembered for the window): the link compared it.

The position: ``{"started": <unix s>, "cursor": <export cursor> | null, "seen": {id:
updated_at}}``; a pass interrupted resumes at its cursor. ``deskstream reconcile --since``
runs one pass from a stored ``{"since": <unix s>}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from connectors.base.source import SOURCE_HEADER, Position, RawRecord, SourceBatch
from connectors.zendesk.incremental import EXPORT_LAG_SECONDS, ZendeskExport
from connectors.zendesk.models import parse_time
from schemas.models import Platform, RawDelivery

__all__ = ["RECONCILED_TICKET", "ZendeskReconcile"]

#: the ``SOURCE_HEADER`` value of a reconciliation's ticket
RECONCILED_TICKET = "zendesk.reconcile"
_EXPORT_REQUESTS_PER_MINUTE = 2
_MAX_SEEN = 5000


class ZendeskReconcile(ZendeskExport):
    kind = "reconcile"
    export_budget = _EXPORT_REQUESTS_PER_MINUTE

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        stored = dict(position or {})
        seen: dict[str, str] = dict(stored.get("seen") or {})
        window = int(self._settings.window_seconds)
        while True:
            now = int(self._clock())
            cursor = stored.get("cursor") or None
            started = int(stored.get("started") or now) if cursor else now
            # The export refuses a start inside its held-back minute.
            since = min(int(stored.get("since") or started - window), now - EXPORT_LAG_SECONDS - 1)
            while True:
                if cursor:
                    page = await self.client.incremental_tickets(cursor=cursor)
                else:
                    page = await self.client.incremental_tickets(start_time=since)
                fresh = [
                    t for t in page.tickets if seen.get(str(t.get("id"))) != t.get("updated_at")
                ]
                for ticket in fresh:
                    seen[str(ticket.get("id"))] = str(ticket.get("updated_at"))
                while len(seen) > _MAX_SEEN:
                    del seen[next(iter(seen))]
                cursor = None if page.end_of_stream else page.after_cursor
                stored = {"started": started, "cursor": cursor, "seen": seen}
                yield SourceBatch(
                    records=[self._record(t) for t in fresh],
                    position=dict(stored),
                    position_time=datetime.fromtimestamp(started, UTC),
                    caught_up=page.end_of_stream,
                    detail=f"{len(fresh)} tickets re-read of {len(page.tickets)} exported",
                )
                if page.end_of_stream:
                    break
            stored = {"seen": seen}
            await asyncio.sleep(self._settings.poll_seconds)

    def _record(self, ticket: dict[str, Any]) -> RawRecord:
        version = str(ticket.get("updated_at") or "")
        delivery = RawDelivery(
            delivery_id=f"{self.kind}:{ticket.get('id')}@{version}",
            connector_id=self.connector_id,
            platform=Platform.ZENDESK,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            headers={SOURCE_HEADER: RECONCILED_TICKET},
            body=json.dumps(ticket, separators=(",", ":")).encode(),
            content_type="application/json",
            signature_verified=True,  # read with our own credentials
        )
        changed = _time(ticket.get("updated_at"))
        key = f"{self.connector_id}:case:{ticket.get('id')}"
        return RawRecord(key=key, delivery=delivery, changed_at=changed)


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None
