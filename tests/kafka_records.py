"""Reading a topic back in tests: every record up to the end offsets of the moment."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["committed_offsets", "read_to_end"]


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic``, by partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def read_to_end(
    bootstrap: str, topic: str, partitions: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` below its end offsets when called, in partition order.

    The loop stops on the offsets actually read, not on ``position()``: right after a seek a
    position can read as the end before the first fetch has landed, and a loop on it then
    returns nothing (seen as "every event lost" in a kill test)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        last = {tp: -1 for tp in tps}
        records: list[ConsumerRecord[bytes, bytes]] = []
        while any(last[tp] < end - 1 for tp, end in ends.items()):
            batch = await consumer.getmany(timeout_ms=500)
            for tp, fetched in batch.items():
                for record in fetched:
                    if record.offset < ends[tp]:
                        records.append(record)
                        last[tp] = record.offset
        return records
    finally:
        await consumer.stop()
