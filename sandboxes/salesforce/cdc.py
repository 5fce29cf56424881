"""Change Data Capture: the org's event bus, with retention, replay ids and gap events.

Every committed transaction becomes change events on one ordered stream shared by all
channels; ``/data/ChangeEvents`` sees every entity, ``/data/<Entity>ChangeEvent`` one. Events
are kept for the retention period (72 hours) on the sandbox clock. Replay ids increase but are
not contiguous, so subscribers must treat them as opaque positions, as Salesforce asks.

What Salesforce documents, and the sandbox does:

- Only objects on the "Change Event Object Support" list publish (``catalog``'s
  ``CHANGE_EVENT_OBJECTS``); changes to others are dropped here.
- Merged events: "If in one transaction the same change occurred in multiple records of the
  same object type during one second, Salesforce merges the change notifications ... the
  recordIds field contains the IDs for all records that have the same change" (ChangeEventHeader
  Fields,
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm;
  Merged Change Events,
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_subscribe_merged_events.htm).
  A transaction's records that changed differently get their own events, sharing the
  ``transactionKey`` with increasing ``sequenceNumber``. The documented examples are updates
  of a field to one value and deletions; the sandbox merges exactly those (identical changed
  fields, values and diffs), never creates (UNVERIFIED whether identical creates merge).
- Long text updates may carry a unified diff (``cdc_diff``).
- Renderings differ per API ("Differences Between Change Events Received with Streaming API
  vs. Pub/Sub API",
  https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/cdc_event_diff_pubsub_cometd.htm,
  and "Change Event Message Structure",
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_message_structure.htm):
  over CometD the header has no ``nulledFields`` or ``diffFields`` (the structure page lists
  ``changedFields`` among CometD's header fields and names those two as Pub/Sub-only; the
  comparison table's "except for changedFields and nulledFields" contradicts its own CometD
  example, which carries ``changedFields``), unpopulated and unchanged fields are left out, and
  a diffed field is ``{"diff": ...}``. A field an update set to null appears as an explicit
  ``null``: the CometD section of "Change Event Body Fields" (API 50.0 guide,
  https://developer.salesforce.com/docs/atlas.en-us.230.0.change_data_capture.meta/change_data_capture/cdc_event_fields_body.htm)
  says the update body "includes empty fields only if they are updated to an empty value
  (null)"; the newer comparison table's "Null fields ... are excluded" is read as unpopulated
  fields (UNVERIFIED: the current guide dropped its CometD section). Over the Pub/Sub API every
  field is present, the header lists fields as bitmaps, and a diffed field holds the diff text.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.salesforce.catalog import CDC_ENTITIES, OBJECTS
from sandboxes.salesforce.cdc_diff import is_long_text, text_diff
from sandboxes.salesforce.cdc_schema import CdcLayout
from sandboxes.salesforce.store import Change

__all__ = ["ALL_CHANGES", "ChangeEvent", "EventBus", "channel_entities"]

logger = logging.getLogger(__name__)

ALL_CHANGES = "/data/ChangeEvents"
_GAP_TYPES = frozenset({"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"})
#: Change types whose identical changes in one transaction merge into one event.
_MERGED_TYPES = frozenset({"UPDATE", "DELETE"})
#: Header fields the Streaming API (CometD) does not send.
_PUBSUB_ONLY_HEADER = ("nulledFields", "diffFields")


def channel_entities(channel: str) -> frozenset[str] | None:
    """The entities a channel carries, or None if there is no such channel."""
    if channel == ALL_CHANGES:
        return frozenset(CDC_ENTITIES)
    for entity in CDC_ENTITIES:
        if channel == f"/data/{entity}ChangeEvent":
            return frozenset({entity})
    return None


@dataclass(frozen=True)
class ChangeEvent:
    replay_id: int
    entity: str
    header: dict[str, Any]
    #: Field values the body carries (populated on create, changed on update, none on gaps);
    #: a field named in ``header["diffFields"]`` holds its unified diff.
    values: dict[str, Any]
    published_at: datetime
    uuid: str

    @property
    def is_gap(self) -> bool:
        return self.header["changeType"] in _GAP_TYPES


@dataclass
class BusCounters:
    events: int = 0
    gaps: int = 0
    pruned: int = 0
    transactions: int = 0
    #: transactions whose change events were dropped (``cdc_drop_rate``)
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "cdc_events": self.events,
            "cdc_gaps": self.gaps,
            "cdc_pruned": self.pruned,
            "cdc_transactions": self.transactions,
            "cdc_dropped": self.dropped,
        }


@dataclass
class EventBus:
    clock: Clock
    rng: random.Random
    retention: timedelta = timedelta(hours=72)
    layouts: dict[str, CdcLayout] = field(default_factory=dict)
    counters: BusCounters = field(default_factory=BusCounters)

    def __post_init__(self) -> None:
        if not self.layouts:
            self.layouts = {entity: CdcLayout(entity) for entity in CDC_ENTITIES}
        self._listeners: set[asyncio.Event] = set()
        self.reset()

    def reset(self) -> None:
        self.events: deque[ChangeEvent] = deque()
        self.origin = self.rng.randrange(1_000_000, 9_000_000)
        self._last = self.origin
        self._pruned_any = False
        self._commit_number = self.rng.randrange(10**12, 2 * 10**12)
        self.counters = BusCounters()
        self._wake()

    # -- positions ------------------------------------------------------------------------

    def prune(self) -> None:
        cutoff = self.clock.now() - self.retention
        while self.events and self.events[0].published_at < cutoff:
            self.events.popleft()
            self._pruned_any = True
            self.counters.pruned += 1

    @property
    def latest_replay_id(self) -> int:
        return self._last

    def is_valid_replay_id(self, replay_id: int) -> bool:
        """Whether a subscriber may resume after ``replay_id`` (a retained event's id)."""
        self.prune()
        if replay_id == self.origin and not self._pruned_any:
            return True
        return any(event.replay_id == replay_id for event in self.events)

    def earliest_position(self) -> int:
        """A cursor before every retained event (replay ``-2`` / ``EARLIEST``)."""
        self.prune()
        return self.events[0].replay_id - 1 if self.events else self._last

    def after(
        self, cursor: int, entities: frozenset[str], limit: int | None = None
    ) -> list[ChangeEvent]:
        self.prune()
        found: list[ChangeEvent] = []
        for event in self.events:
            if event.replay_id > cursor and event.entity in entities:
                found.append(event)
                if limit is not None and len(found) >= limit:
                    break
        return found

    # -- waiting --------------------------------------------------------------------------

    def listener(self) -> asyncio.Event:
        """An event set on every publish; release it with :meth:`release`."""
        signal = asyncio.Event()
        self._listeners.add(signal)
        return signal

    def release(self, signal: asyncio.Event) -> None:
        self._listeners.discard(signal)

    def _wake(self) -> None:
        for signal in list(self._listeners):
            signal.set()

    def wake_all(self) -> None:
        self._wake()

    # -- publishing -----------------------------------------------------------------------

    def _next_replay_id(self) -> int:
        self._last += self.rng.randint(1, 7)
        return self._last

    def _transaction_key(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _append(self, entity: str, header: dict[str, Any], values: dict[str, Any]) -> ChangeEvent:
        event = ChangeEvent(
            replay_id=self._next_replay_id(),
            entity=entity,
            header=header,
            values=values,
            published_at=self.clock.now(),
            uuid=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
        )
        self.events.append(event)
        self.counters.events += 1
        self.counters.gaps += event.is_gap
        logger.debug(
            "cdc event entity=%s change_type=%s replay_id=%s records=%s",
            entity,
            header["changeType"],
            event.replay_id,
            ",".join(header["recordIds"]),
        )
        return event

    def commit(
        self,
        changes: Iterable[Change],
        *,
        origin: str,
        user_id: str,
        gap_rate: float = 0.0,
        drop_rate: float = 0.0,
    ) -> list[ChangeEvent]:
        """Publish one transaction's change events (nothing for objects without CDC, nor
        for a transaction the ``drop_rate`` fault loses: the records change, no event says so)."""
        groups = _merge([_Draft.of(c) for c in changes if c.entity in CDC_ENTITIES])
        if not groups:
            return []
        if drop_rate > 0 and self.rng.random() < drop_rate:
            self.counters.dropped += 1
            logger.debug("cdc events dropped (fault) entity=%s", groups[0][0].entity)
            return []
        self.prune()
        now = self.clock.now()
        self._commit_number += self.rng.randint(1, 50)
        key = self._transaction_key()
        self.counters.transactions += 1
        published = []
        for sequence, (draft, record_ids) in enumerate(groups, start=1):
            gap = gap_rate > 0 and self.rng.random() < gap_rate
            header = {
                "entityName": draft.entity,
                "recordIds": record_ids,
                "changeType": f"GAP_{draft.change_type}" if gap else draft.change_type,
                "changeOrigin": origin,
                "transactionKey": key,
                "sequenceNumber": sequence,
                "commitTimestamp": int(now.timestamp() * 1000),
                "commitNumber": self._commit_number,
                "commitUser": user_id,
                "changedFields": [] if gap else list(draft.changed),
                "nulledFields": [] if gap else list(draft.nulled),
                "diffFields": [] if gap else list(draft.diffed),
            }
            published.append(self._append(draft.entity, header, {} if gap else dict(draft.body)))
        self._wake()
        return published

    def publish_gap(
        self, entity: str, change_type: str, record_ids: list[str], *, user_id: str
    ) -> ChangeEvent:
        """A header-only gap event, as Salesforce sends when it cannot build the full one."""
        if change_type not in _GAP_TYPES:
            raise ValueError(f"not a gap change type: {change_type}")
        self.prune()
        self._commit_number += self.rng.randint(1, 50)
        header = {
            "entityName": entity,
            "recordIds": list(record_ids),
            "changeType": change_type,
            "changeOrigin": "",
            "transactionKey": self._transaction_key(),
            "sequenceNumber": 1,
            "commitTimestamp": int(self.clock.now().timestamp() * 1000),
            "commitNumber": self._commit_number,
            "commitUser": user_id,
            "changedFields": [],
            "nulledFields": [],
            "diffFields": [],
        }
        event = self._append(entity, header, {})
        self._wake()
        return event

    # -- renderings -----------------------------------------------------------------------

    def cometd_data(self, event: ChangeEvent) -> dict[str, Any]:
        """The ``data`` of a CometD message: schema id, JSON payload, replay id."""
        layout = self.layouts[event.entity]
        header = {k: v for k, v in event.header.items() if k not in _PUBSUB_ONLY_HEADER}
        header["changedFields"] = layout.json_names(header["changedFields"])
        values = dict(event.values)
        for name in event.header["diffFields"]:
            values[name] = {"diff": values[name]}
        payload = {"ChangeEventHeader": header, **layout.json_body(values)}
        return {
            "schema": layout.schema_id,
            "payload": payload,
            "event": {"replayId": event.replay_id},
        }

    def avro_payload(self, event: ChangeEvent) -> bytes:
        """The Pub/Sub API payload: Avro binary with bitmap header fields."""
        layout = self.layouts[event.entity]
        header = dict(event.header)
        for name in ("changedFields", "nulledFields", "diffFields"):
            header[name] = layout.bitmaps(header[name])
        return layout.encode(layout.avro_record(header, event.values))


@dataclass(frozen=True)
class _Draft:
    """One record's change as its event will carry it, before merging."""

    entity: str
    record_id: str
    change_type: str
    changed: tuple[str, ...]
    nulled: tuple[str, ...]
    diffed: tuple[str, ...]
    body: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, change: Change) -> _Draft:
        body = _body(change)
        diffed = []
        if change.change_type == "UPDATE":
            spec = OBJECTS[change.entity]
            for name in change.changed:
                field_spec = spec.field(name)
                if field_spec is None or not is_long_text(field_spec):
                    continue
                diff = text_diff(change.previous.get(name), change.record.get(name))
                if diff is not None:
                    body[name] = diff
                    diffed.append(name)
        return cls(
            change.entity,
            change.record_id,
            change.change_type,
            change.changed,
            change.nulled,
            tuple(diffed),
            tuple(body.items()),
        )

    @property
    def merge_key(self) -> tuple[Any, ...] | None:
        """Equal for drafts that are "the same change"; None when this one never merges."""
        if self.change_type not in _MERGED_TYPES:
            return None
        return (self.entity, self.change_type, self.changed, self.nulled, self.diffed, self.body)


def _merge(drafts: list[_Draft]) -> list[tuple[_Draft, list[str]]]:
    """Drafts with their record ids, identical changes merged at the first one's position."""
    groups: list[tuple[_Draft, list[str]]] = []
    by_key: dict[tuple[Any, ...], list[str]] = {}
    for draft in drafts:
        key = draft.merge_key
        if key is not None and key in by_key:
            by_key[key].append(draft.record_id)
            continue
        record_ids = [draft.record_id]
        if key is not None:
            by_key[key] = record_ids
        groups.append((draft, record_ids))
    return groups


def _body(change: Change) -> dict[str, Any]:
    spec = OBJECTS[change.entity]
    if change.change_type in ("CREATE", "UNDELETE"):
        return {
            f.name: change.record[f.name]
            for f in spec.fields
            if f.in_cdc and change.record.get(f.name) is not None
        }
    if change.change_type == "UPDATE":
        return {name: change.record.get(name) for name in change.changed}
    return {}
