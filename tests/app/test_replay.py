"""``deskstream replay`` against a real broker: a time range of canonical events into a topic
and into Parquet, counted (rows equal the source range), interrupted and resumed (no
duplicates, no gaps), filtered, and without touching any consumer group's offsets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from app.replay.parquet import CHECKPOINT_NAME
from app.replay.run import ReplayResult, run_replay
from app.replay.topic import REPLAY_HEADER
from app.settings import Settings, load_settings
from schemas.codec import encode
from schemas.models import Envelope, Platform
from streams.normalize import event_key
from streams.replay import ReplayFilter, ReplayJob
from tests.kafka_harness import TopicFactory
from tests.schemas.examples import EXAMPLES

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
LABELS = ["Envelope-case", "Envelope-contact", "Envelope-message", "Envelope-handoff"]
PLATFORMS = [Platform.ZENDESK, Platform.INTERCOM, Platform.SALESFORCE]
EVENTS = 300
HOUR_MS = 60 * 60 * 1000
T0_MS = 1_795_000_000_000  # 2026-11-18T..., three days of events from here
STEP_MS = 72 * HOUR_MS // EVENTS
START_MS = T0_MS + 17 * HOUR_MS
END_MS = T0_MS + 60 * HOUR_MS


@dataclass(frozen=True)
class Produced:
    n: int
    partition: int
    offset: int
    timestamp: int
    key: bytes
    headers: tuple[tuple[str, bytes], ...]
    event: Envelope


@dataclass(frozen=True)
class Source:
    topic: str
    records: list[Produced]
    bootstrap: str

    def in_range(self) -> list[Produced]:
        return [r for r in self.records if START_MS <= r.timestamp < END_MS]


def _event(n: int) -> Envelope:
    example = EXAMPLES[LABELS[n % len(LABELS)]]
    assert isinstance(example, Envelope)
    source = example.source.model_copy(
        update={"platform": PLATFORMS[n % len(PLATFORMS)], "entity_id": f"e{n % 7}"}
    )
    return example.model_copy(
        update={"event_id": f"evt-{n}", "source": source, "link_id": f"link-{n % 5}"}
    )


@pytest.fixture
async def source(kafka_bootstrap_servers: str, kafka_topics: TopicFactory) -> Source:
    topic = await kafka_topics.create("events", partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    records = []
    try:
        for n in range(EVENTS):
            event = _event(n)
            key = event_key(event).encode()
            headers = (("origin", b"test"), ("n", str(n).encode()))
            timestamp = T0_MS + n * STEP_MS
            sent = await producer.send_and_wait(
                topic, encode(event), key=key, headers=list(headers), timestamp_ms=timestamp
            )
            records.append(Produced(n, sent.partition, sent.offset, timestamp, key, headers, event))
    finally:
        await producer.stop()
    return Source(topic, records, kafka_bootstrap_servers)


def _settings(source: Source, tmp_path: Path) -> Settings:
    return load_settings(
        kafka_bootstrap_servers=source.bootstrap,
        partitions=3,
        replication_factor=1,
        state_dir=tmp_path / "state",
    )


def _job(source: Source, output: str, target: str, **criteria: list[str]) -> ReplayJob:
    return ReplayJob(source.topic, START_MS, END_MS, ReplayFilter.of(**criteria), output, target)


async def _replay(
    source: Source,
    tmp_path: Path,
    job: ReplayJob,
    *,
    stop_after: int | None = None,
    checkpoint_every: int = 100_000,
) -> ReplayResult:
    checkpoint = (
        Path(job.target) / CHECKPOINT_NAME
        if job.output == "parquet"
        else tmp_path / f"{job.target}.json"
    )
    return await run_replay(
        _settings(source, tmp_path),
        job,
        checkpoint_path=checkpoint,
        stop_after=stop_after,
        checkpoint_every=checkpoint_every,
    )


def _rows(folder: Path) -> list[tuple[int, int, str, str, str]]:
    query = """
        SELECT kafka_partition, kafka_offset, event_id, entity_type, date::VARCHAR
        FROM read_parquet($glob, hive_partitioning=true)
    """
    return duckdb.execute(query, {"glob": f"{folder}/**/*.parquet"}).fetchall()


async def _topic_records(bootstrap: str, topic: str) -> list[Copied]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    found: list[Copied] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp, first in (await consumer.beginning_offsets(tps)).items():
            consumer.seek(tp, first)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=500)
            found += [
                Copied(r.partition, r.key or b"", tuple(r.headers), r.timestamp)
                for records in batch.values()
                for r in records
            ]
    finally:
        await consumer.stop()
    return found


@dataclass(frozen=True)
class Copied:
    partition: int
    key: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int

    @property
    def replayed(self) -> str:
        """The source position the replay header names (``<topic>/<partition>/<offset>``)."""
        return dict(self.headers)[REPLAY_HEADER].decode().split("/", 1)[1]

    @property
    def original_headers(self) -> tuple[tuple[str, bytes], ...]:
        return tuple(h for h in self.headers if h[0] != REPLAY_HEADER)


def _ids(records: list[Produced]) -> list[str]:
    return sorted(r.event.event_id for r in records)


async def test_replay_to_parquet_writes_one_row_per_record_of_the_range(
    source: Source, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = await _replay(source, tmp_path, _job(source, "parquet", str(out)))
    expected = source.in_range()
    assert 0 < len(expected) < EVENTS  # the range cuts the topic on both sides
    rows = _rows(out)
    assert len(rows) == len(expected) == result.checkpoint.written
    assert sorted(r[2] for r in rows) == _ids(expected)
    by_position = {(r.partition, r.offset): r for r in expected}
    for partition, offset, event_id, entity_type, day in rows:
        record = by_position[(partition, offset)]  # provenance names the source record
        assert record.event.event_id == event_id
        assert record.event.source.entity_type.value == entity_type
        assert day == _day(record.timestamp)
    assert result.checkpoint.done
    assert result.checkpoint.outside == 0  # offsets_for_times found the range exactly

    again = await _replay(source, tmp_path, _job(source, "parquet", str(out)))
    assert again.already_done
    assert len(_rows(out)) == len(expected)  # running it again adds nothing


def _day(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")


async def test_replay_to_a_topic_copies_keys_headers_timestamps_and_partitions(
    source: Source, tmp_path: Path, kafka_topics: TopicFactory
) -> None:
    target = kafka_topics.name("replayed")
    kafka_topics.created.append(target)  # created by the replay, deleted after the test
    result = await _replay(source, tmp_path, _job(source, "topic", target))
    copied = await _topic_records(source.bootstrap, target)
    expected = source.in_range()
    assert len(copied) == len(expected) == result.checkpoint.written
    by_position = {f"{source.topic}/{r.partition}/{r.offset}": r for r in expected}
    assert sorted(c.replayed for c in copied) == sorted(by_position)
    for copy in copied:
        original = by_position[copy.replayed]
        assert (copy.key, copy.original_headers) == (original.key, original.headers)
        assert (copy.partition, copy.timestamp) == (original.partition, original.timestamp)


async def test_an_interrupted_parquet_replay_resumes_without_duplicates_or_gaps(
    source: Source, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = _job(source, "parquet", str(out))
    first = await _replay(source, tmp_path, job, stop_after=137, checkpoint_every=50)
    assert first.stopped
    assert not first.checkpoint.done
    assert 0 < len(_rows(out)) < len(source.in_range())
    # A crash after a flush's files were written and before its checkpoint was saved: the
    # files of the later flushes are there, the checkpoint is the earlier one.
    saved = tmp_path / "checkpoint-after-interruption.json"
    shutil.copy(out / CHECKPOINT_NAME, saved)
    await _replay(source, tmp_path, job, checkpoint_every=50)
    shutil.copy(saved, out / CHECKPOINT_NAME)

    resumed = await _replay(source, tmp_path, job, checkpoint_every=50)
    assert resumed.removed_files > 0
    rows = _rows(out)
    positions = Counter((p, o) for p, o, *_ in rows)
    assert max(positions.values()) == 1  # no duplicates
    assert sorted(r[2] for r in rows) == _ids(source.in_range())  # no gaps
    assert resumed.checkpoint.done
    assert resumed.checkpoint.written == len(rows)


async def test_an_interrupted_topic_replay_resumes_without_duplicates_or_gaps(
    source: Source, tmp_path: Path, kafka_topics: TopicFactory
) -> None:
    target = kafka_topics.name("replayed")
    kafka_topics.created.append(target)
    job = _job(source, "topic", target)
    checkpoint = tmp_path / f"{target}.json"
    await _replay(source, tmp_path, job, stop_after=137, checkpoint_every=50)
    saved = tmp_path / "checkpoint-after-interruption.json"
    shutil.copy(checkpoint, saved)
    # The records after that checkpoint land on the target, then the "crash" loses it.
    await _replay(source, tmp_path, job, checkpoint_every=50)
    shutil.copy(saved, checkpoint)

    resumed = await _replay(source, tmp_path, job, checkpoint_every=50)
    assert resumed.found_on_target > 0  # sent after the checkpoint: not sent again
    copied = await _topic_records(source.bootstrap, target)
    replayed = Counter(c.replayed for c in copied)
    assert max(replayed.values()) == 1
    assert len(copied) == len(source.in_range()) == resumed.checkpoint.written


async def test_filters_keep_exactly_the_matching_events(source: Source, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = _job(
        source,
        "parquet",
        str(out),
        platforms=["intercom", "salesforce"],
        entity_types=["case", "message"],
        links=["link-1", "link-2", "link-3"],
    )
    result = await _replay(source, tmp_path, job)
    expected = [
        r
        for r in source.in_range()
        if r.event.source.platform in (Platform.INTERCOM, Platform.SALESFORCE)
        and r.event.source.entity_type.value in ("case", "message")
        and r.event.link_id in ("link-1", "link-2", "link-3")
    ]
    assert expected
    assert sorted(r[2] for r in _rows(out)) == _ids(expected)
    assert result.checkpoint.filtered == len(source.in_range()) - len(expected)

    by_entity = tmp_path / "by-entity"
    await _replay(source, tmp_path, _job(source, "parquet", str(by_entity), entity_ids=["e3"]))
    assert sorted(r[2] for r in _rows(by_entity)) == _ids(
        [r for r in source.in_range() if r.event.source.entity_id == "e3"]
    )


async def test_the_live_groups_committed_offsets_are_untouched(
    source: Source, tmp_path: Path, kafka_topics: TopicFactory
) -> None:
    group = f"live-{kafka_topics.name('group')}"
    tps = [TopicPartition(source.topic, p) for p in range(3)]
    live = AIOKafkaConsumer(
        bootstrap_servers=source.bootstrap, group_id=group, enable_auto_commit=False
    )
    await live.start()
    try:
        live.assign(tps)
        await live.commit({tp: OffsetAndMetadata(5 + tp.partition, "") for tp in tps})
    finally:
        await live.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=source.bootstrap)
    await admin.start()
    try:
        before = await admin.list_consumer_group_offsets(group)
        target = kafka_topics.name("replayed")
        kafka_topics.created.append(target)
        await _replay(source, tmp_path, _job(source, "parquet", str(tmp_path / "out")))
        await _replay(source, tmp_path, _job(source, "topic", target))
        after = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert {tp: o.offset for tp, o in after.items()} == {tp: 5 + tp.partition for tp in tps}
    assert after == before


def test_the_command_shows_progress_and_resumes_where_it_stopped(
    source: Source, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": source.bootstrap,
        "DESKSTREAM_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable, "-m", "app", "replay", "--topic", source.topic,
        "--from", _iso(START_MS), "--to", _iso(END_MS), "--out", str(out),
        "--checkpoint-every", "40",
    ]  # fmt: skip
    stopped = subprocess.run(
        [*command, "--stop-after", "90"], env=env, capture_output=True, text=True, timeout=120
    )
    assert stopped.returncode == 0, stopped.stderr
    assert "run the same command again to resume" in stopped.stdout
    progress = stopped.stderr.strip().splitlines()[-1]
    assert re.search(r"\d+/\d+ records .*%.* rec/s  ETA \d+:\d\d:\d\d", progress), progress
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert len(rows) == len({(p, o) for p, o, *_ in rows}) == len(source.in_range())


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat()


async def test_records_larger_than_a_batch_are_copied_whole(
    kafka_bootstrap_servers: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    topic = await kafka_topics.create("big", partitions=1)
    values = [b"a" * 700_000, b"small", b"b" * 700_000]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for n, value in enumerate(values):
            await producer.send_and_wait(topic, value, key=str(n).encode())
    finally:
        await producer.stop()
    target = kafka_topics.name("big-copy")
    kafka_topics.created.append(target)
    job = ReplayJob(topic, None, None, ReplayFilter.of(), "topic", target)
    settings = load_settings(kafka_bootstrap_servers=kafka_bootstrap_servers, state_dir=tmp_path)
    result = await run_replay(settings, job, checkpoint_path=tmp_path / "big.json")
    assert result.checkpoint.written == 3
    consumer = AIOKafkaConsumer(
        target, bootstrap_servers=kafka_bootstrap_servers, group_id=None,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    copied: list[bytes] = []
    try:
        for _ in range(30):  # at most 30 s, in case fewer came
            batch = await consumer.getmany(timeout_ms=1000)
            copied += [r.value or b"" for records in batch.values() for r in records]
            if len(copied) >= 3:
                break
    finally:
        await consumer.stop()
    assert copied == values
