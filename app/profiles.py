"""A read-only cache of customer profiles on every worker, fed by ``deskstream.entities``.

Escalations run in the partition of their conversation's link, but routing by plan and
identity resolution need the customer's profile, which lives in the contact link's partition,
usually on another worker. Rather than a Faust GlobalTable (documented to loop in recovery
with several workers), each worker reads the compacted entities topic from the start with a
plain consumer outside the group and keeps the latest contact per contact link id.

Eventually consistent by nature: a profile written a moment ago may not be here yet; callers
treat a miss as "unknown" (default routing, identity from the conversation's requester) and
say so in the audit record.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from app.errors import SchemaError
from schemas.codec import decode
from schemas.models import Contact, Envelope

__all__ = ["ProfileCache"]

log = logging.getLogger(__name__)


class ProfileCache:
    def __init__(self, bootstrap_servers: str, topic: str, partitions: int) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._partitions = partitions
        self._profiles: dict[str, Contact] = {}

    def get(self, contact_link_id: str) -> Contact | None:
        return self._profiles.get(contact_link_id)

    def __len__(self) -> int:
        return len(self._profiles)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        link_id = key.decode()
        if value is None:  # a tombstone: the link is gone
            self._profiles.pop(link_id, None)
            return
        try:
            record = decode(value)
        except SchemaError:
            log.warning("profile cache skipped an unreadable record key=%s", link_id)
            return
        if isinstance(record, Envelope) and isinstance(record.data, Contact):
            self._profiles[link_id] = record.data

    async def run(self) -> None:
        """Follow the topic forever; reconnects are aiokafka's job, crashes are logged."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(self._topic, p) for p in range(self._partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batch.values():
                    for record in records:
                        self.apply(record.key, record.value)
        except KafkaError:
            log.exception("profile cache stopped topic=%s", self._topic)
        finally:
            await consumer.stop()
