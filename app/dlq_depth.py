"""``deskstream_dlq_depth``: the dead letters waiting for ``deskstream dlq retry``.

Every ``DEPTH_EVERY_S`` a worker compares the dead-letter topic's end offsets with the retry
group's committed offsets (``app.dead_letters.retry_group``), or with the log start where the
group never committed or retention removed what it had not retried. Every worker measures the
same figure (the dashboard takes the max): one ListOffsets pair and an offset fetch per look,
whatever the traffic. The consumer carries the group's id only to read its offsets: it never
subscribes (so never joins the group) and never commits.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

from app.dead_letters import dlq_partitions, retry_group
from app.settings import Settings

__all__ = ["DEPTH_EVERY_S", "DlqDepth", "waiting_letters"]

log = logging.getLogger(__name__)

DEPTH_EVERY_S = 30.0


async def waiting_letters(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    """Records of ``partitions`` past the consumer's group's committed offsets."""
    ends = await consumer.end_offsets(partitions)
    starts = await consumer.beginning_offsets(partitions)
    waiting = 0
    for tp in partitions:
        retried_up_to = await consumer.committed(tp) or 0
        waiting += max(0, ends[tp] - max(starts[tp], retried_up_to))
    return waiting


class DlqDepth:
    def __init__(self, settings: Settings, bootstrap_servers: str, gauge: Gauge) -> None:
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._gauge = gauge

    async def run(self) -> None:
        """Measure forever (a Faust task: cancelled at the worker's stop)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=retry_group(self._settings),
            enable_auto_commit=False,
        )
        await consumer.start()
        partitions = dlq_partitions(self._settings)
        failing = False
        try:
            while True:
                try:
                    self._gauge.set(await waiting_letters(consumer, partitions))
                except KafkaError as exc:
                    if not failing:  # once per streak: the gauge keeps its last value
                        log.warning(
                            "could not count the dead letters waiting topic=%s error=%r; "
                            "trying again every %.0f s (is the topic there? `deskstream "
                            "topics create`)",
                            partitions[0].topic,
                            exc,
                            DEPTH_EVERY_S,
                        )
                    failing = True
                else:
                    if failing:
                        log.info("dead letters counted again topic=%s", partitions[0].topic)
                    failing = False
                await asyncio.sleep(DEPTH_EVERY_S)
        finally:
            await consumer.stop()
