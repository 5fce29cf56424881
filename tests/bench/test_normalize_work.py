"""The records bench.normalize_work and bench.ingest_pipeline time are what a worker
normalises: one event each, none quarantined (a timing of quarantines would say nothing)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.agents.normalize import RecordNormaliser
from app.settings import load_settings
from bench.generic_records import CONNECTOR, ENTITIES, raw_record
from bench.normalize_work import normalize_work
from schemas.codec import decode_as
from schemas.models import Envelope
from streams.normalize import event_key


def test_each_raw_record_normalises_to_one_event_of_its_keys_entity() -> None:
    agent = RecordNormaliser(load_settings(connectors={CONNECTOR: {"platform": "generic"}}))
    now = datetime.now(UTC)
    for n in (0, 1, ENTITIES + 1):
        key, value = raw_record(n, now)
        outcome, delivery = agent.encoded(value, "in this test")
        assert outcome.quarantined is None
        assert delivery.connector_id == CONNECTOR
        [(event, data)] = outcome.events
        assert decode_as(data, Envelope) == event
        # the raw key names the same case as the event's key: one partition per case
        assert event_key(event) == f"generic:{key.decode()}"


def test_the_benchmark_runs_on_those_records() -> None:
    # it refuses to time records the worker would quarantine; these it times
    work = normalize_work(100)
    assert work.total_us > work.decode_us > 0
