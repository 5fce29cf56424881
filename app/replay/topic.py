"""Replayed records onto another topic: same keys, same headers, same timestamps.

Each record keeps its partition when the target has as many partitions as the source (the
target is created that way when missing), else goes where its key hashes. One header is added,
``deskstream-replay-of: <run id>/<topic>/<partition>/<offset>``, naming the record replayed:
it is how an interrupted replay knows, on resume, which records after its last checkpoint are
already on the target (a crash between a send and the checkpoint), so it writes each exactly
once. Consumers that do not know the header ignore it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from schemas.errors import KafkaStackError
from streams.replay import Checkpoint

__all__ = ["REPLAY_HEADER", "TopicOutput", "new_producer"]

REPLAY_HEADER = "deskstream-replay-of"


def new_producer(bootstrap: str, *, max_request_bytes: int) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,  # retries neither duplicate nor reorder a partition's records
        linger_ms=20,
        # Under any topic's max.message.bytes (1 MB by default), which a batch must respect;
        # a larger record still goes, alone in its batch.
        max_batch_size=512 * 1024,
        max_request_size=max_request_bytes,
        compression_type=None,
    )


def _marker(run_id: str, record: ConsumerRecord[bytes, bytes]) -> bytes:
    return f"{run_id}/{record.topic}/{record.partition}/{record.offset}".encode()


class TopicOutput:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer,
        target: str,
        run_id: str,
        *,
        partitions: int,
        same_partitions: bool,
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self.target = target
        self._run_id = run_id
        self._partitions = partitions
        self._same_partitions = same_partitions
        self._pending: list[Awaitable[Any]] = []
        self._batches: dict[int, Any] = {}  # partition → aiokafka BatchBuilder being filled
        self.buffered = 0

    async def already_written(self, since: dict[int, int]) -> dict[int, set[int]]:
        """Source partition → offsets this run already put on the target at or after the
        target offsets ``since`` (the last checkpoint's)."""
        tps = [TopicPartition(self.target, p) for p in sorted(since)]
        ends = await self._consumer.end_offsets(tps)
        todo = {tp: end for tp, end in ends.items() if since[tp.partition] < end}
        found: dict[int, set[int]] = {}
        if not todo:
            return found
        prefix = f"{self._run_id}/".encode()
        self._consumer.assign(list(todo))
        for tp in todo:
            self._consumer.seek(tp, since[tp.partition])
        while todo:
            batch = await self._consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    marker = dict(record.headers).get(REPLAY_HEADER, b"")
                    if marker.startswith(prefix):
                        _, _, partition, offset = marker.decode().rsplit("/", 3)
                        found.setdefault(int(partition), set()).add(int(offset))
            for tp in list(todo):
                if await self._consumer.position(tp) >= todo[tp]:
                    del todo[tp]
        self._consumer.unsubscribe()
        return found

    async def put(
        self, record: ConsumerRecord[bytes, bytes], envelope: dict[str, Any] | None
    ) -> None:
        """Send ``record`` as it is (``envelope``, when decoded for a filter, is not used)."""
        headers = [*record.headers, (REPLAY_HEADER, _marker(self._run_id, record))]
        self.buffered += 1
        if not self._same_partitions:
            self._pending.append(
                await self._producer.send(
                    self.target,
                    record.value,
                    key=record.key,
                    headers=headers,
                    timestamp_ms=record.timestamp,
                )
            )
            return
        # The partition is known: fill a batch per partition ourselves (several times cheaper
        # per record than ``send``, which partitions, serializes and queues each one).
        partition = record.partition
        batch = self._batches.get(partition)
        if batch is not None and batch.append(
            timestamp=record.timestamp, key=record.key, value=record.value, headers=headers
        ):
            return
        await self._send_batch(partition)  # full (or none yet): a new one, which always
        batch = self._batches[partition] = self._producer.create_batch()  # takes a first record
        batch.append(
            timestamp=record.timestamp, key=record.key, value=record.value, headers=headers
        )

    async def _send_batch(self, partition: int) -> None:
        batch = self._batches.pop(partition, None)
        if batch is not None:
            batch.close()
            self._pending.append(
                await self._producer.send_batch(batch, self.target, partition=partition)
            )

    async def flush(self, checkpoint: Checkpoint) -> int:
        """Wait until Kafka acknowledged every record sent; returns how many there were, and
        moves the checkpoint's resume scan to the target's end (all of them are below it)."""
        for partition in list(self._batches):
            await self._send_batch(partition)
        pending, self._pending = self._pending, []
        try:
            await asyncio.gather(*pending)
        except Exception as exc:
            raise KafkaStackError(
                f"Kafka did not acknowledge replayed records on {self.target} "
                f"({type(exc).__name__}: {exc}); run the same command again: it resumes from "
                "its last checkpoint without writing a record twice"
            ) from exc
        sent, self.buffered = self.buffered, 0
        checkpoint.target_offsets = await self.target_offsets()
        return sent

    async def target_offsets(self) -> dict[int, int]:
        tps = [TopicPartition(self.target, p) for p in range(self._partitions)]
        return {tp.partition: end for tp, end in (await self._consumer.end_offsets(tps)).items()}
