"""Tables in RocksDB (``DESKSTREAM_TABLE_STORE=rocksdb://``, production's store) survive a
worker restart: the second worker process, on the same state folder, finds the table in its
databases and drops a replay of what the first one already sent.

The ``recent_events`` table is the one a webhook reaches without the sync stage; ``links``
is declared the same way (``app.tables``: the same store, the same RocksDB options).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from tests.app.test_worker_e2e import (
    _entity_body,
    _post,
    _read_until,
    _replay_raw,
    _worker_env,
)

pytestmark = pytest.mark.kafka


async def test_a_table_in_rocksdb_survives_a_restart(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    env, settings = _worker_env(kafka_bootstrap_servers, tmp_path)
    env["DESKSTREAM_TABLE_STORE"] = "rocksdb://"
    await ensure_topics(kafka_bootstrap_servers, topic_specs(settings))
    entity = f"rocks-{uuid.uuid4().hex[:6]}"
    events_topic = settings.topic("events")
    with run_worker(env, port=free_port(), log=tmp_path / "first.log") as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
            assert await _post(http, _entity_body(entity, 1)) == 200
            await _read_until(kafka_bootstrap_servers, events_topic, f"{entity}-1")
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
