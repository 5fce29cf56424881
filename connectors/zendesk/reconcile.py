"""Zendesk reconciliation as a ``Source`` (kind ``reconcile``): every ``poll_seconds`` the
tickets, then the users, modified in the last ``window_seconds`` are re-read through the
cursor-based exports (``connectors.zendesk.incremental``; ``/incremental/users/cursor``) and
sent as reconciliations (``connectors.base.source.RECONCILE_EVENT_TYPE``): the sync stage
compares every synced field (a user's profile fields) with what the link believes and repairs
what drifted, through the normal planner path, audited ``reconciled`` with the cause it can
tell (a change no webhook reported, a manual change of a field another platform owns). A
version already sent is not sent again (ids and ``updated_at`` are remembered for the
window): the link compared it.

The position: ``{"started": <unix s>, "since": <unix s>, "phase": "tickets" | "users",
"cursor": <export cursor> | null, "seen": {ticket id: updated_at}, "users_seen": {user id:
updated_at}}``; a pass interrupted resumes at its phase and cursor. ``deskstream reconcile
--since`` runs one pass from a stored ``{"since": <unix s>}``.
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

__all__ = ["RECONCILED_TICKET", "RECONCILED_USER", "ZendeskReconcile"]

#: the ``SOURCE_HEADER`` value of a reconciliation's ticket
RECONCILED_TICKET = "zendesk.reconcile"
#: ... and of a user
RECONCILED_USER = "zendesk.reconcile_users"
_EXPORT_REQUESTS_PER_MINUTE = 2
_MAX_SEEN = 5000


class ZendeskReconcile(ZendeskExport):
    kind = "reconcile"
    export_budget = _EXPORT_REQUESTS_PER_MINUTE

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        stored = dict(position or {})
        seen: dict[str, str] = dict(stored.get("seen") or {})
        users_seen: dict[str, str] = dict(stored.get("users_seen") or {})
        window = int(self._settings.window_seconds)
        while True:
            now = int(self._clock())
            phase = str(stored.get("phase") or "tickets")
            cursor = stored.get("cursor") or None
            started = int(stored.get("started") or now) if cursor or phase == "users" else now
            # The export refuses a start inside its held-back minute.
            since = min(int(stored.get("since") or started - window), now - EXPORT_LAG_SECONDS - 1)

            while phase == "tickets":
                if cursor:
                    page = await self.client.incremental_tickets(cursor=cursor)
                else:
                    page = await self.client.incremental_tickets(start_time=since)
                fresh = _fresh(page.tickets, seen)
                cursor = None if page.end_of_stream else page.after_cursor
                phase = "users" if page.end_of_stream else phase
                yield SourceBatch(
                    records=[self._record(t) for t in fresh],
                    position=_position(started, since, phase, cursor, seen, users_seen),
                    position_time=datetime.fromtimestamp(started, UTC),
                    detail=f"{len(fresh)} tickets re-read of {len(page.tickets)} exported",
                )
            while True:
                if cursor:
                    page = await self.client.incremental_users(cursor=cursor)
                else:
                    page = await self.client.incremental_users(start_time=since)
                users = _fresh(page.tickets, users_seen)  # the users are in the tickets' place
                cursor = None if page.end_of_stream else page.after_cursor
                yield SourceBatch(
                    records=[self._user_record(u) for u in users],
                    position=_position(started, since, phase, cursor, seen, users_seen),
                    position_time=datetime.fromtimestamp(started, UTC),
                    caught_up=page.end_of_stream,
                    detail=f"{len(users)} users re-read of {len(page.tickets)} exported",
                )
                if page.end_of_stream:
                    break
            stored = {"seen": seen, "users_seen": users_seen}
            await asyncio.sleep(self._settings.poll_seconds)

    def _user_record(self, user: dict[str, Any]) -> RawRecord:
        version = str(user.get("updated_at") or "")
        delivery = self._delivery(
            f"{self.kind}:user:{user.get('id')}@{version}",
            RECONCILED_USER,
            {"user": user, "changed": []},
        )
        key = f"{self.connector_id}:contact:{user.get('id')}"
        return RawRecord(key=key, delivery=delivery, changed_at=_time(user.get("updated_at")))

    def _record(self, ticket: dict[str, Any]) -> RawRecord:
        version = str(ticket.get("updated_at") or "")
        delivery_id = f"{self.kind}:{ticket.get('id')}@{version}"
        delivery = self._delivery(delivery_id, RECONCILED_TICKET, ticket)
        changed = _time(ticket.get("updated_at"))
        key = f"{self.connector_id}:case:{ticket.get('id')}"
        return RawRecord(key=key, delivery=delivery, changed_at=changed)

    def _delivery(self, delivery_id: str, header: str, body: dict[str, Any]) -> RawDelivery:
        return RawDelivery(
            delivery_id=delivery_id,
            connector_id=self.connector_id,
            platform=Platform.ZENDESK,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            headers={SOURCE_HEADER: header},
            body=json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json",
            signature_verified=True,  # read with our own credentials
        )


def _position(
    started: int,
    since: int,
    phase: str,
    cursor: str | None,
    seen: dict[str, str],
    users_seen: dict[str, str],
) -> Position:
    return {
        "started": started,
        "since": since,
        "phase": phase,
        "cursor": cursor,
        "seen": dict(seen),
        "users_seen": dict(users_seen),
    }


def _fresh(records: list[dict[str, Any]], seen: dict[str, str]) -> list[dict[str, Any]]:
    """The versions not sent yet; each is remembered (the oldest forgotten past the bound)."""
    fresh = [r for r in records if seen.get(str(r.get("id"))) != str(r.get("updated_at"))]
    for record in fresh:
        seen.pop(str(record.get("id")), None)
        seen[str(record.get("id"))] = str(record.get("updated_at"))
    while len(seen) > _MAX_SEEN:
        del seen[next(iter(seen))]
    return fresh


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None
