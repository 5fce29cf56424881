"""Tables in RocksDB (``DESKSTREAM_TABLE_STORE=rocksdb://``, production's store) survive a
worker restart: the second worker process, on the same state folder, finds the table in its
databases and drops a replay of what the first one already sent.

The ``recent_events`` table is the one a webhook reaches without the sync stage; ``links``
is declared the same way (``app.tables``: the same store, the same RocksDB options).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from streams.recent_ids import size_of
from tests.app.test_worker_e2e import (
    _entity_body,
    _post,
    _read_until,
    _replay_raw,
    _worker_env,
)
from tests.kafka_records import read_to_end

pytestmark = pytest.mark.kafka


async def _first_worker_sends_one(
    bootstrap: str, folder: Path, name: str
) -> tuple[dict[str, str], Settings, str]:
    """A worker on RocksDB tables in ``folder`` sends an entity's first event, and stops: the
    environment to start the next one with, its settings, the entity."""
    env, settings = _worker_env(bootstrap, folder)
    env["DESKSTREAM_TABLE_STORE"] = "rocksdb://"
    await ensure_topics(bootstrap, topic_specs(settings))
    entity = f"{name}-{uuid.uuid4().hex[:6]}"
    with run_worker(env, port=free_port(), log=folder / "first.log") as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
            assert await _post(http, _entity_body(entity, 1)) == 200
            await _read_until(bootstrap, settings.topic("events"), f"{entity}-1")
    return env, settings, entity


async def test_a_table_in_rocksdb_survives_a_restart(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    env, settings, entity = await _first_worker_sends_one(
        kafka_bootstrap_servers, tmp_path, "rocks"
    )
    events_topic = settings.topic("events")
    # The first worker kept its table on disk, one RocksDB database per partition.
    databases = [p for p in (tmp_path / "tables").rglob("recent_events-*.db") if p.is_dir()]
    assert databases, f"no RocksDB database under {tmp_path / 'tables'}"
    with run_worker(env, port=free_port(), log=tmp_path / "second.log") as second:
        assert await _replay_raw(kafka_bootstrap_servers, settings, entity) == 1
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as http:
            assert await _post(http, _entity_body(entity, 2)) == 200
        events = await _read_until(kafka_bootstrap_servers, events_topic, f"{entity}-2")
    ids = sorted(e.source.source_event_id or "" for e in events)
    assert ids == [f"{entity}-1", f"{entity}-2"]  # the replayed one dropped


async def _dedupe_states(bootstrap: str, settings: Settings, entity: str) -> list[bytes]:
    """The ``recent_events`` changelog records of the entity's raw key, in order."""
    changelog = f"{settings.app_id}-recent_events-changelog"
    records = await read_to_end(bootstrap, changelog, settings.partitions)
    return [r.value or b"" for r in records if entity.encode() in (r.key or b"")]


async def test_a_record_read_again_on_its_disk_writes_its_ids_to_the_changelog_again(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    # The database on disk can hold ids its changelog lacks (a stop between the table's write
    # and the changelog record's acknowledgement). A raw record read again whose events are
    # all copies then writes its key's state to the changelog before it is acked, so the
    # partition's next owner restores it. A live redelivery writes nothing again.
    env, settings, entity = await _first_worker_sends_one(
        kafka_bootstrap_servers, tmp_path, "again"
    )
    events_topic = settings.topic("events")
    assert len(await _dedupe_states(kafka_bootstrap_servers, settings, entity)) == 1
    # Written again while no worker runs: the next one reads it below the partition's end
    # at its assignment, as it would a record it had not acked before a stop.
    assert await _replay_raw(kafka_bootstrap_servers, settings, entity) == 1
    with run_worker(env, port=free_port(), log=tmp_path / "second.log") as second:
        for _ in range(120):  # the catch-up record, within a minute
            states = await _dedupe_states(kafka_bootstrap_servers, settings, entity)
            if len(states) >= 2:
                break
            await asyncio.sleep(0.5)
        caught_up = len(states)
        assert caught_up >= 2
        assert set(states) == {states[0]}  # the same ids: the copy was dropped
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as http:
            assert await _post(http, _entity_body(entity, 1)) == 200  # a live redelivery
            assert await _post(http, _entity_body(entity, 2)) == 200
        events = await _read_until(kafka_bootstrap_servers, events_topic, f"{entity}-2")
    ids = sorted(e.source.source_event_id or "" for e in events)
    assert ids == [f"{entity}-1", f"{entity}-2"]
    states = await _dedupe_states(kafka_bootstrap_servers, settings, entity)
    assert len(states) == caught_up + 1  # the new id; nothing for the live copy
    assert size_of(states[-1]) == 2
