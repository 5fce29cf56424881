"""Intercom conversations and contacts by polling: the search API on ``updated_at`` as
``Source``s (kinds ``conversations`` and ``contacts``), the fallback for webhooks Intercom
paused, suspended or never sent, and the only feed for a workspace that cannot reach our
endpoint (``ConnectorSettings.mode``).

Official page: "Search conversations" / "Search contacts" (``POST /conversations/search``,
``POST /contacts/search``, Intercom API 2.14, in ``shared/specs/intercom-openapi-2.14.yaml``).
What this module relies on:

- a query on ``updated_at`` with ``>``, which the conversation search documents as "greater
  (or equal) than" on full Unix timestamps; the contact search compares dates by calendar day
  (a ``>`` starts at the next day), so a contact poll asks for the day before its bound and
  reads a day of overlap;
- cursor pagination (``pagination.starting_after``, ``pages.next.starting_after``), at most
  150 per page; the order of results is not documented, so a poll reads every page of its
  query before it moves its bound;
- "If a contact has recently been created, there is a possibility that it will not yet be
  available when searching [...] This delay can take a few minutes": every poll reaches back
  ``overlap_seconds`` (300 by default, UNVERIFIED for conversations: no page states their
  delay) behind the start of the previous one, and a seen-set of ``id → updated_at`` from that
  overlap keeps a version already read from costing a second read;
- a conversation found is read whole (``GET /conversations/{id}``: its parts are the changes,
  ``connectors.intercom.polled``); a contact is complete in the search answer.

- ``updated_at`` counts whole seconds, so a change made in the second a record was read leaves
  its version as it was: only a version whose second ended ``SETTLE_SECONDS`` (2: the
  platform's clock may run ahead of ours) before the read began is remembered as read. A
  record read sooner is read again by the next poll (the overlap is never shorter than the
  settling time, so the search finds it), and its delivery id carries a digest of what was
  read (``<kind>:<id>@<updated_at>#<digest>``), so the re-read is not dropped as a copy of
  the first. Before this, polls landing between two replies made within one second lost the
  second reply for good (the webhooks-off end-to-end test, under CPU load).

The position: ``{"since": <unix s>, "started": <unix s>, "after": <page cursor> | null,
"seen": {id: updated_at}}``: the query's bound, when the poll in progress began, where it is
among its pages, and the settled versions read in the overlap. Stored after each page, so a
crash re-reads at most one page (the same versions: the same delivery ids,
``<kind>:<id>@<updated_at>``, hence the same event ids). A first run starts
``start_lookback_seconds`` back.

Calls go through a ``YieldingBudget``: at most ``budget_share`` of the connector's limit, and
only while the sink of the same connector leaves room (``connectors.base.ratelimit``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from connectors.base.feeds import ApiFeed
from connectors.base.ratelimit import RateBudget, YieldingBudget, registered_budget
from connectors.base.settings import ConnectorSettings, SourceSettings
from connectors.base.source import SOURCE_HEADER, Position, RawRecord, SourceBatch
from connectors.intercom.client import (
    DEFAULT_BASE_URL,
    WINDOW_S,
    IntercomClient,
    budget_for,
    window_limit,
)
from connectors.intercom.polled import (
    POLLED_CONTACT,
    POLLED_CONVERSATION,
    RECONCILED_CONTACT,
    RECONCILED_CONVERSATION,
)
from schemas.models import Platform, RawDelivery

__all__ = [
    "DEFAULT_OVERLAP_SECONDS",
    "SETTLE_SECONDS",
    "IntercomContactPoll",
    "IntercomConversationPoll",
    "IntercomReconcile",
    "poll_budget",
]

#: how far a poll reaches back behind the previous one: "a few minutes" of search delay
DEFAULT_OVERLAP_SECONDS = 300
_MAX_PER_PAGE = 150
#: versions remembered from the overlap; past it, a version is read again (same ids)
_MAX_SEEN = 5000
_DAY = 86_400
#: a version is final once its second ended this long before the read began (whole-second
#: ``updated_at``; the platform's clock may run ahead of ours)
SETTLE_SECONDS = 2


def poll_budget(
    connector_id: str, settings: ConnectorSettings, source: SourceSettings
) -> YieldingBudget:
    """``source.budget_share`` of the account's calls per 10-second window, taken from the
    budget the connector's sink uses and only while it has room."""
    cap = max(1, int(window_limit(settings) * source.budget_share))
    return YieldingBudget(cap, WINDOW_S, shared=lambda: registered_budget(connector_id))


@dataclass(frozen=True)
class _Read:
    record: RawRecord
    #: the version read can no longer change without its ``updated_at`` moving
    settled: bool


class _SearchPoll(ApiFeed):
    """Polls ``POST /<model>/search`` for records updated since the last poll."""

    kind: ClassVar[str]
    model: ClassVar[str]
    header: ClassVar[str]
    entity: ClassVar[str]
    #: whether the search compares dates by calendar day (contacts)
    by_day: ClassVar[bool] = False

    default_base_url = DEFAULT_BASE_URL
    timeout = httpx.Timeout(15.0, connect=5.0)

    def __init__(self, *, budget: YieldingBudget | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        connector_id, settings, source = self.connector_id, self._connector, self._settings
        self.budget = budget or poll_budget(connector_id, settings, source)
        self.client = IntercomClient.from_settings(settings, http=self._http, budget=self.budget)
        self.overlap = self._overlap(source)

    def _first_back(self) -> int:
        """How far back a first run (no stored position) starts."""
        return self._settings.start_lookback_seconds

    def _overlap(self, source: SourceSettings) -> int:
        overlap = source.overlap_seconds
        wanted = DEFAULT_OVERLAP_SECONDS if overlap is None else int(overlap)
        # Shorter, the next poll's search could miss a record read before it settled.
        return max(wanted, SETTLE_SECONDS + 1)

    def account_view(self) -> RateBudget:
        """A budget of the account's whole limit, for a process without the connector's sink
        (``deskstream backfill``): registered, the answers' rate-limit headers keep it at what
        the platform says is left, and this source's calls yield to it."""
        return budget_for(self._connector)

    def _query(self, since: int) -> dict[str, Any]:
        bound = since - _DAY if self.by_day else since
        return {"field": "updated_at", "operator": ">", "value": bound}

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        while True:
            async for batch in self.poll(position):
                position = batch.position
                yield batch
            await asyncio.sleep(self._settings.poll_seconds)

    async def poll(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        """One whole poll from ``position``: every page of the query, a batch per page; the
        last moves the bound and is ``caught_up``."""
        now = int(self._clock())
        stored = position or {}
        since = int(stored.get("since") or now - self._first_back())
        after: str | None = stored.get("after") or None
        # A poll left between two pages goes on with its own start; otherwise one begins now.
        started = int(stored.get("started") or now) if after else now
        seen: dict[str, int] = {str(k): int(v) for k, v in (stored.get("seen") or {}).items()}
        per_page = min(self._settings.batch_size, _MAX_PER_PAGE)
        while True:
            searched = self._clock()
            page = await self.client.search_page(
                self.model, self._query(since), per_page=per_page, starting_after=after
            )
            fresh = [item for item in page.items if _version(item) != seen.get(str(item["id"]))]
            reads = [await self._read(item, searched) for item in fresh]
            records = [r.record for r in reads]
            for item, done in zip(fresh, reads, strict=True):
                if done.settled:  # a version still open to changes is read again next poll
                    seen[str(item["id"])] = _version(item) or 0
                else:
                    seen.pop(str(item["id"]), None)
            after = page.next_cursor
            if after is None:  # the poll is complete: move the bound, keep the overlap's seen
                since = max(since, started - self.overlap)
            # A day search finds the whole day again: remember the day's versions.
            seen = _recent(seen, since - _DAY if self.by_day else since)
            newest = max((_version(i) or 0 for i in fresh), default=0)
            yield SourceBatch(
                records=records,
                position={"since": since, "started": started, "after": after, "seen": seen},
                position_time=datetime.fromtimestamp(newest, UTC) if newest else None,
                caught_up=after is None,
                detail=f"{len(records)} {self.model} of {len(page.items)} found",
            )
            if after is None:
                return

    async def _read(self, item: dict[str, Any], searched: float) -> _Read:
        """The record of ``item`` as read now, and whether its version is settled (the search
        answer was asked for at ``searched``)."""
        body, asked = await self._body(item, searched)
        record_id, version = str(body.get("id") or item["id"]), _version(body) or _version(item)
        settled = version is not None and version + 1 + SETTLE_SECONDS <= asked
        # An unsettled version may be read again with more in it: the id names what was read.
        read = "" if settled else f"#{_digest(body)}"
        delivery = RawDelivery(
            delivery_id=f"{self.kind}:{record_id}@{version}{read}",
            connector_id=self.connector_id,
            platform=Platform.INTERCOM,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            headers={SOURCE_HEADER: self.header},
            body=json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json",
            # Read from the platform's API with our own token: what a signature proves.
            signature_verified=True,
        )
        # The key webhook ingest gives the record's deliveries: one partition, in order.
        key = f"{self.connector_id}:{self.entity}:{record_id}"
        changed = datetime.fromtimestamp(version, UTC) if version else None
        return _Read(RawRecord(key=key, delivery=delivery, changed_at=changed), settled)

    async def _body(self, item: dict[str, Any], searched: float) -> tuple[dict[str, Any], float]:
        """The record's body and when it was asked for: the search answer holds it whole."""
        return item, searched


class IntercomConversationPoll(_SearchPoll):
    """Conversations updated since the last poll, each read whole with its parts."""

    kind = "conversations"
    model = "conversations"
    header = POLLED_CONVERSATION
    entity = "case"

    async def _body(self, item: dict[str, Any], searched: float) -> tuple[dict[str, Any], float]:
        asked = self._clock()
        return await self.client.conversation_json(str(item["id"])), asked


class IntercomContactPoll(_SearchPoll):
    """Contacts updated since the last poll (the search answer holds them whole)."""

    kind = "contacts"
    model = "contacts"
    header = POLLED_CONTACT
    entity = "contact"
    by_day = True


class _Window:
    """A reconciliation's search: the window for its overlap, and a first run reaching back
    the window."""

    overlap: int

    def _overlap(self, source: SourceSettings) -> int:
        return max(int(source.window_seconds), SETTLE_SECONDS + 1)

    def _first_back(self) -> int:
        return self.overlap


class _ReconciledContacts(_Window, IntercomContactPoll):
    kind = "reconcile_contacts"  # delivery ids ``reconcile_contacts:<id>@<updated_at>``
    header = RECONCILED_CONTACT


class IntercomReconcile(_Window, IntercomConversationPoll):
    """The conversations and contacts modified in the last ``window_seconds``, re-read every
    ``poll_seconds`` and sent as reconciliations: the sync stage compares each with what the
    link believes and repairs what drifted (``connectors.base.source.RECONCILE_EVENT_TYPE``).
    A version already sent is not read again (the link has compared it). The same searches as
    the polls, with the window for their overlap: beside the polls (mode ``both``) it only
    re-checks; with webhooks alone it is the net under them. One pass reads the conversations,
    then the contacts, on one budget; the position holds each search's
    (``{"conversations": …, "contacts": …}``; a ``{"since": …}`` alone starts both there)."""

    kind = "reconcile"
    header = RECONCILED_CONVERSATION

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contacts = _ReconciledContacts(
            connector_id=self.connector_id,
            settings=self._connector,
            source=self._settings,
            http=self._http,
            clock=self._clock,
            budget=self.budget,
        )

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        stored = dict(position or {})
        start = {"since": stored["since"]} if "since" in stored else None
        while True:
            for key, search in (("conversations", self.poll), ("contacts", self.contacts.poll)):
                async for batch in search(stored.get(key) or start):
                    stored[key] = batch.position
                    last = key == "contacts" and batch.caught_up
                    yield replace(batch, position=dict(stored), caught_up=last)
            stored.pop("since", None)
            start = None
            await asyncio.sleep(self._settings.poll_seconds)


def _version(item: dict[str, Any]) -> int | None:
    value = item.get("updated_at")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def _recent(seen: dict[str, int], since: int) -> dict[str, int]:
    """The versions inside the overlap (a later poll can find them again), newest kept when
    there are too many."""
    kept = {k: v for k, v in seen.items() if v >= since}
    if len(kept) > _MAX_SEEN:
        kept = dict(sorted(kept.items(), key=lambda kv: kv[1])[-_MAX_SEEN:])
    return kept
