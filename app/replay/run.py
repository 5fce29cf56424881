"""One replay, start (or resume) to end: read the range, keep what the filters keep, write it,
checkpoint as it goes.

The checkpoint is saved right after an output flush, so everything below each partition's
``next`` is durable in the output and nothing above it is counted as written. On resume the
output is first made to agree with the checkpoint (``ParquetOutput.prepare`` deletes a flush
a crash cut short; ``TopicOutput.already_written`` finds the records sent after the last
checkpoint), then reading continues from ``next``: no row or record twice, none missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from app.kafka_connection import bootstrap_servers
from app.replay.checkpoint import load_checkpoint, save_checkpoint
from app.replay.progress import Progress
from app.replay.source import new_consumer, partitions_of, plan_spans, read_spans
from app.replay.topic import TopicOutput, new_producer
from app.settings import Settings
from app.topic_admin import ensure_topics, spec_like
from app.topics import max_message_bytes, producer_max_request_size
from schemas.codec import decode_dict, writer_schema_id
from schemas.errors import KafkaStackError, SchemaError
from streams.replay import Checkpoint, ReplayJob, in_time_range

__all__ = ["ReplayResult", "run_replay"]

log = logging.getLogger(__name__)

_ENVELOPE = "deskstream.Envelope"
#: unreadable records named one by one in the log, before only counting them
_NAMED_UNREADABLE = 5


@dataclass(frozen=True, slots=True)
class ReplayResult:
    checkpoint: Checkpoint
    #: the replay was complete before this run started
    already_done: bool
    #: stopped before the end (a signal, or ``stop_after``): run again to resume
    stopped: bool
    #: part files of an interrupted flush deleted on resume
    removed_files: int
    #: records of the range that retention removed before they were replayed
    lost_to_retention: int
    #: topic output: records found on the target after the last checkpoint (sent before an
    #: interruption), not sent again
    found_on_target: int = 0


class _Output(Protocol):
    @property
    def buffered(self) -> int: ...

    async def put(
        self, record: ConsumerRecord[bytes, bytes], envelope: dict[str, Any] | None
    ) -> None: ...

    async def flush(self, checkpoint: Checkpoint) -> int: ...


class _ParquetSink:
    def __init__(self, folder: Path) -> None:
        from app.replay.columns import EnvelopeColumns  # pyarrow: the analytics extra
        from app.replay.parquet import ParquetOutput

        self.files = ParquetOutput(folder, EnvelopeColumns())

    @property
    def buffered(self) -> int:
        return self.files.buffered

    async def put(
        self, record: ConsumerRecord[bytes, bytes], envelope: dict[str, Any] | None
    ) -> None:
        assert envelope is not None
        provenance = {
            "kafka_topic": record.topic,
            "kafka_partition": record.partition,
            "kafka_offset": record.offset,
            "kafka_timestamp": record.timestamp,
            "kafka_key": None if record.key is None else record.key.decode(errors="replace"),
            "schema_id": writer_schema_id(record.value),
        }
        self.files.add(self.files.columns.row(envelope, provenance), record.timestamp)

    async def flush(self, checkpoint: Checkpoint) -> int:
        written = await asyncio.to_thread(self.files.flush, checkpoint.flushes + 1)
        checkpoint.flushes += 1
        return written


def _missing_pyarrow(exc: ImportError) -> KafkaStackError:
    return KafkaStackError(
        f"Parquet export needs pyarrow, which is not installed ({exc}); install the analytics "
        "extra: pip install -e '.[analytics]' (make install does)"
    )


class _Run:
    def __init__(self, settings: Settings, job: ReplayJob, checkpoint_path: Path) -> None:
        self.settings = settings
        self.job = job
        self.checkpoint_path = checkpoint_path
        self.bootstrap = bootstrap_servers(settings)
        self.unreadable_named = 0

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> dict[str, Any] | None:
        """The envelope a record holds, or None (logged and counted) when it holds none."""
        try:
            name, datum = decode_dict(record.value)
            if name == _ENVELOPE:
                return datum
            problem = f"it holds a {name}, not a canonical event"
        except SchemaError as exc:
            problem = str(exc)
        if self.unreadable_named < _NAMED_UNREADABLE:
            self.unreadable_named += 1
            log.warning(
                "replay skipped a record topic=%s partition=%d offset=%d reason=%s",
                record.topic,
                record.partition,
                record.offset,
                problem,
            )
        return None


async def run_replay(
    settings: Settings,
    job: ReplayJob,
    *,
    checkpoint_path: Path,
    checkpoint_every: int = 100_000,
    stop_after: int | None = None,
    stop: asyncio.Event | None = None,
    progress_stream: Any = None,
) -> ReplayResult:
    """Run (or resume) ``job``; ``stop`` set, or ``stop_after`` records read, ends it early
    with everything read so far written and checkpointed."""
    run = _Run(settings, job, checkpoint_path)
    consumer = new_consumer(run.bootstrap, max_message_bytes=max_message_bytes(settings))
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise KafkaStackError(
            f"cannot reach Kafka at {run.bootstrap} ({type(exc).__name__}); start the local "
            "stack with `deskstream kafka up` or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    try:
        return await _replay(
            run, consumer, checkpoint_every, stop_after, stop or asyncio.Event(), progress_stream
        )
    finally:
        await consumer.stop()


async def _replay(
    run: _Run,
    consumer: AIOKafkaConsumer,
    checkpoint_every: int,
    stop_after: int | None,
    stop: asyncio.Event,
    progress_stream: Any,
) -> ReplayResult:
    job = run.job
    partitions = await partitions_of(run.bootstrap, job.topic)
    checkpoint = load_checkpoint(run.checkpoint_path, job)
    if checkpoint is not None and checkpoint.done:
        return ReplayResult(checkpoint, True, False, 0, 0)
    fresh = checkpoint is None
    if checkpoint is None:
        spans = await plan_spans(consumer, partitions, job.start_ms, job.end_ms)
        checkpoint = Checkpoint(job=job.to_json(), spans=spans, run_id=uuid.uuid4().hex[:12])

    removed = 0
    already: dict[int, set[int]] = {}
    async with contextlib.AsyncExitStack() as stack:
        output: _Output
        if job.output == "parquet":
            try:
                parquet = _ParquetSink(Path(job.target))
            except ImportError as exc:
                raise _missing_pyarrow(exc) from exc
            removed = parquet.files.prepare(None if fresh else checkpoint)
            output = parquet
        else:
            topic = await _topic_output(run, consumer, checkpoint, len(partitions), stack)
            if fresh:
                checkpoint.target_offsets = await topic.target_offsets()
            else:
                already = await topic.already_written(checkpoint.target_offsets)
            output = topic
        if fresh:
            save_checkpoint(run.checkpoint_path, checkpoint)  # the range is fixed from now on
        lost = await _lost_to_retention(consumer, job.topic, checkpoint)
        stopped = await _copy(
            run, consumer, output, checkpoint, already, checkpoint_every, stop_after, stop,
            progress_stream,
        )  # fmt: skip
    found = sum(len(offsets) for offsets in already.values())
    return ReplayResult(checkpoint, False, stopped, removed, lost, found)


async def _topic_output(
    run: _Run,
    consumer: AIOKafkaConsumer,
    checkpoint: Checkpoint,
    source_partitions: int,
    stack: contextlib.AsyncExitStack,
) -> TopicOutput:
    """The target topic (created like the source when missing) and a producer for it."""
    job = run.job
    spec = await spec_like(run.bootstrap, job.topic, job.target)
    await ensure_topics(run.bootstrap, [spec])
    target = await partitions_of(run.bootstrap, job.target)
    producer = new_producer(
        run.bootstrap, max_request_bytes=producer_max_request_size(run.settings)
    )
    await producer.start()
    stack.push_async_callback(producer.stop)
    return TopicOutput(
        producer,
        consumer,
        job.target,
        checkpoint.run_id,
        partitions=len(target),
        same_partitions=len(target) == source_partitions,
    )


async def _lost_to_retention(consumer: AIOKafkaConsumer, topic: str, checkpoint: Checkpoint) -> int:
    tps = [TopicPartition(topic, p) for p in checkpoint.spans]
    beginnings = await consumer.beginning_offsets(tps)
    lost = 0
    for tp, first in beginnings.items():
        span = checkpoint.spans[tp.partition]
        if span.remaining and span.next < first:
            lost += min(first, span.end) - span.next
    return lost


async def _copy(
    run: _Run,
    consumer: AIOKafkaConsumer,
    output: _Output,
    checkpoint: Checkpoint,
    already: dict[int, set[int]],
    checkpoint_every: int,
    stop_after: int | None,
    stop: asyncio.Event,
    progress_stream: Any,
) -> bool:
    job = run.job
    keep_all = job.filter.keeps_everything
    parquet = job.output == "parquet"
    progress = Progress(
        checkpoint.remaining, label=f"replay {job.topic} → {job.target}", stream=progress_stream
    )
    read = since_checkpoint = 0
    stopped = False

    async def save() -> None:
        checkpoint.written += await output.flush(checkpoint)
        save_checkpoint(run.checkpoint_path, checkpoint)

    batches = read_spans(consumer, job.topic, checkpoint.spans)
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for record in batch:
                if stop_after is not None and read >= stop_after:
                    stopped = True
                    break
                read += 1
                since_checkpoint += 1
                checkpoint.spans[record.partition].next = record.offset + 1
                if not in_time_range(record.timestamp, job.start_ms, job.end_ms):
                    checkpoint.outside += 1
                    continue
                if record.offset in already.get(record.partition, ()):
                    checkpoint.written += 1  # sent after the last checkpoint, before a crash
                    continue
                envelope = None
                if parquet or not keep_all:
                    envelope = run.decode(record)
                    if envelope is None:
                        checkpoint.unreadable += 1
                        continue
                    if not job.filter.matches(envelope):
                        checkpoint.filtered += 1
                        continue
                await output.put(record, envelope)
            progress.update(read, checkpoint.written + output.buffered)
            if stopped or stop.is_set():
                stopped = True
                break
            if since_checkpoint >= checkpoint_every:
                await save()
                since_checkpoint = 0
    checkpoint.done = not stopped and checkpoint.remaining == 0
    await save()
    progress.update(read, checkpoint.written)
    progress.finish()
    return stopped
