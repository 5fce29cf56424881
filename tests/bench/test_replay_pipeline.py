"""The replay benchmark's history and its accounting (no broker): the generated deliveries
yield, through the real Intercom ingest and normaliser, exactly the canonical events the
benchmark expects on the sync topic, and the tally counts each event's decision once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.replay_tally import Tally
from bench.replay_traffic import (
    CONNECTOR,
    ESCALATE_EVERY,
    conversations_for,
    deliveries,
    events_of,
    sync_records,
)
from connectors.base.ingest import WebhookRequest
from connectors.base.settings import ConnectorSettings
from connectors.intercom.ingest import IntercomIngest
from connectors.intercom.normalize import IntercomNormaliser
from schemas.codec import decode, encode
from schemas.models import AuditRecord, EntityType, Envelope, RawDelivery

NORMALISER = IntercomNormaliser(
    connector_id=CONNECTOR,
    settings=ConnectorSettings(platform="intercom", service_account_id="991267009"),
)
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_deliveries_yield_the_expected_canonical_events_on_each_link() -> None:
    conversations = 2 * ESCALATE_EVERY + 1
    ingest = IntercomIngest(connector_id=CONNECTOR, secret=None)
    # normalize drops an event id it already sent for the same raw key (the first message
    # every notification repeats): what reaches the sync topic is one per (key, id)
    sent: dict[bytes, set[str]] = {}
    escalations = 0
    for record in deliveries(conversations):
        delivery = decode(encode(record.delivery))  # as the worker reads it back
        assert isinstance(delivery, RawDelivery)
        request = WebhookRequest(
            connector_id=CONNECTOR, headers={}, body=delivery.body, received_at=T0
        )
        assert record.key.decode() == ingest.partition_key(request)
        for event in NORMALISER.normalise(delivery):
            assert event.link_id is not None  # every event goes on to the sync topic
            sent.setdefault(record.key, set()).add(event.event_id)
            if "tags.escalate" in event.changed_fields:
                assert event.source.entity_type is EntityType.CASE
                escalations += 1
    assert len(sent) == conversations  # one raw key, and so one link, per conversation
    assert sum(len(ids) for ids in sent.values()) == sum(events_of(n) for n in range(conversations))
    assert escalations == 3  # conversations 0, 4 and 8


def test_sync_records_are_what_normalize_writes_onto_the_sync_topic() -> None:
    conversations = 2 * ESCALATE_EVERY + 1
    records = list(sync_records(deliveries(conversations), NORMALISER, None))
    # the dedupe by raw key: one record per distinct event, the count the tally expects
    assert len(records) == sum(events_of(n) for n in range(conversations))
    events = [decode(record.value) for record in records]
    assert len({e.event_id for e in events if isinstance(e, Envelope)}) == len(records)
    for record, event in zip(records, events, strict=True):
        assert isinstance(event, Envelope)
        assert record.key == (event.link_id or "").encode()  # the sync topic's key
        assert record.value == encode(event)  # the bytes normalize sends
    assert len({record.key for record in records}) == conversations


def test_conversations_for_reaches_the_events_asked_for_and_no_more() -> None:
    for events in (1, 7, 8, 15, 1000, 12345):
        count = conversations_for(events)
        total = sum(events_of(n) for n in range(count))
        assert total >= events > total - events_of(count - 1)


def _audit(
    n: int, stage: str, *, event: str | None = None, command: str | None = None, at: int = 0
) -> AuditRecord:
    decision = "written_case_on_zendesk" if stage == "sink" else "synced"
    return AuditRecord(
        audit_id=f"a{n}",
        link_id="link",
        at=T0 + timedelta(seconds=at),
        stage=stage,
        decision=decision,
        reason="test",
        event_id=event,
        command_id=command,
    )


def test_tally_counts_each_event_once_and_finds_the_missing_and_the_repeated() -> None:
    tally = Tally()
    records = [
        _audit(1, "sync", event="e1", at=5),
        _audit(2, "echo", event="e2", at=9),
        _audit(3, "sync", event="e1", at=12),  # the same input read again
        _audit(4, "sink", command="c1", at=20),  # a sink record names no event
        _audit(5, "sink", command="c1", at=21),  # ... and the same command written twice
        _audit(6, "sink", command="c2", at=22),
        _audit(7, "sync", at=30),  # a decision about no event (a timer)
    ]
    for record in records:
        tally.add(record)
    assert tally.decided == {"e1", "e2"}
    assert tally.again == 1
    assert tally.first == T0 + timedelta(seconds=5)
    assert tally.last == T0 + timedelta(seconds=9)  # the last event's decision, not the sinks'
    assert tally.missing(2) == 0
    assert tally.missing(3) == 1
    assert tally.repeated_writes == 1
    assert set(tally.writes) == {"c1", "c2"}
