"""Reconciliation as a ``Source``: the net under Change Data Capture. Every ``POLL_SECONDS``
it re-reads the Cases and Contacts modified in the last ``WINDOW_SECONDS`` (QueryAll, so a
deletion shows as ``IsDeleted``; ``reconcile.window_query``) and sends the ones that differ
from what it read before (``reconcile.differences``) as ``raw.record_delivery(
read="reconcile")`` through the normal path.

Why field by field: a change event can be lost (a gap the subscriber could not see, an event
past its retention while a worker was down; "Change Data Capture Allocations" and "Gap
Events", Change Data Capture Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_other_events.htm).
Salesforce reports every status and priority change explicitly, so the sync stage takes a
copy of a record that names no changed field as news of where the record is, never as a
change (``connectors.salesforce.adapter``). A record that differs from the previous read
therefore names the fields that differ (``changed``): the normaliser reports them as the
event's ``changed_fields`` and the lost change competes like any other.

Its memory is in the position: per object, the synced fields it compares
(``records.Vocabulary.select`` without the audit fields) and, per record, a short hash of each
field's value, for at most ``MEMORY_RECORDS`` records (the most recently modified kept; about
80 bytes each). A record it does not remember (first seen, or forgotten) is sent as a plain
copy naming no field: whatever the sync stage does not know yet (a lost CREATE) it learns,
and what it knows it compares. A record whose fields are unchanged (its stamp moved for
fields Deskstream does not sync) is not sent.

Where a first run starts: the window before now, every record in it a plain copy. A position
with ``since`` (epoch seconds; ``deskstream reconcile --since``, given the worker's stored
position so the memory compares) reaches back to it in its first pass instead of the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from connectors.base.source import Position, RawRecord, SourceBatch
from connectors.salesforce.raw import record_delivery
from connectors.salesforce.reconcile import Difference, differences
from connectors.salesforce.source_org import SYNCED, SalesforceSource, raw_record

__all__ = ["DELETED", "SalesforceReconcile", "field_digest"]

#: the digest of a record seen deleted
DELETED = "-"
_AUDIT = frozenset({"CreatedDate", "LastModifiedDate"})
_HASH_CHARS = 6


def field_digest(record: Mapping[str, Any], fields: list[str]) -> str:
    """Each field's value hashed to a few characters, joined in ``fields`` order."""
    if record.get("IsDeleted") is True:
        return DELETED
    parts = []
    for name in fields:
        text = json.dumps(record.get(name), sort_keys=True, separators=(",", ":"), default=str)
        parts.append(hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS])
    return ".".join(parts)


def _differing(fields: list[str], old: str, new: str) -> list[str]:
    if DELETED in (old, new):
        return []  # a deletion or an undeletion: the record itself says so
    return [
        name for name, a, b in zip(fields, old.split("."), new.split("."), strict=True) if a != b
    ]


class SalesforceReconcile(SalesforceSource):
    kind = "reconcile"
    remembers = True

    def _setup(self) -> None:
        self.compared = {
            sobject: [f for f in self._org.vocabulary.select(sobject) if f not in _AUDIT]
            for sobject in SYNCED
        }

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        known = self._memory(position)
        since = (position or {}).get("since")
        start = datetime.fromtimestamp(int(since), UTC) if since is not None else None
        while True:
            async for batch in self._pass(known, start):
                yield batch
            start = None
            await asyncio.sleep(self._settings.poll_seconds)

    def _memory(self, position: Position | None) -> dict[str, dict[str, str]]:
        """What the stored position remembers, per object; an object whose compared fields
        changed since (the settings did) starts over."""
        stored = position or {}
        fields, known = stored.get("fields") or {}, stored.get("known") or {}
        return {
            sobject: dict(known.get(sobject) or {}) if fields.get(sobject) == compared else {}
            for sobject, compared in self.compared.items()
        }

    def _position(self, known: dict[str, dict[str, str]]) -> Position:
        # A snapshot: the runtime compares positions and stores this one after we resume.
        return {"fields": dict(self.compared), "known": {s: dict(k) for s, k in known.items()}}

    async def _pass(
        self, known: dict[str, dict[str, str]], since: datetime | None = None
    ) -> AsyncGenerator[SourceBatch, None]:
        now = self._org.now()
        since = since or now - timedelta(seconds=self._settings.window_seconds)
        for sobject in SYNCED:
            memory, compared = known[sobject], self.compared[sobject]
            digest = partial(field_digest, fields=compared)
            soql = self._org.window(sobject, since)
            async with contextlib.aclosing(self._org.pages(soql)) as pages:
                async for page in pages:
                    records = [
                        self._record(sobject, found, memory)
                        for found in differences(page, memory, digest)
                    ]
                    self._forget(memory)
                    yield SourceBatch(
                        records,
                        self._position(known),
                        position_time=now,
                        detail=f"{len(records)} {sobject} differences of {len(page)} re-read",
                    )
        yield SourceBatch([], self._position(known), position_time=now, caught_up=True)

    def _record(self, sobject: str, found: Difference, memory: dict[str, str]) -> RawRecord:
        """The delivery of a record that differs; ``memory`` remembers it, newest last."""
        record_id = str(found.record.get("Id"))
        old = memory.pop(record_id, None)
        changed = [] if old is None else _differing(self.compared[sobject], old, found.fingerprint)
        memory[record_id] = found.fingerprint
        delivery = record_delivery(
            self.connector_id,
            sobject,
            found.record,
            read="reconcile",
            changed=changed,
            source=self.tag,
        )
        return raw_record(self.connector_id, delivery)

    def _forget(self, memory: dict[str, str]) -> None:
        """Keep the most recently changed records: the oldest entries go first."""
        while len(memory) > self._settings.memory_records:
            del memory[next(iter(memory))]
