"""A read-only cache of customer profiles on every worker, fed by ``deskstream.entities``.

Decisions run in the partition of a conversation's link, but two of them need the customer's
profile, which lives in the contact link's partition (usually on another worker): routing a
new ticket by the customer's plan, and acknowledging a new Zendesk ticket in Intercom (Zendesk
names the requester by user id only; the email is in the user's own events). Rather than a
Faust GlobalTable (documented to loop in recovery with several workers), each worker reads the
compacted entities topic from the start with a plain consumer outside the group and keeps the
latest contact per link and platform, indexed by each platform's own id too.

Eventually consistent by nature: a profile written a moment ago may not be here yet. A miss
means "unknown": the decision says so in its audit record, and a decision that needs the
profile asks to be taken again a little later (``Plan.retry_in``).
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.codec import decode
from schemas.errors import SchemaError
from schemas.models import Contact, Envelope

__all__ = ["ProfileCache", "is_profile_key", "profile_key"]

log = logging.getLogger(__name__)

#: the side whose profile wins when both platforms know the customer (it holds plan & co.)
_PREFERRED = ("intercom", "zendesk")


def profile_key(link_id: str, platform: str) -> str:
    """The entities key of one platform's contact in a contact link (compaction keeps both)."""
    return f"{link_id}:{platform}"


def is_profile_key(key: bytes) -> bool:
    """Whether an entities key is a contact's (``profile_key``): a case's snapshot is keyed by
    its bare link id, which has no colon (``connectors.base.links``)."""
    return b":" in key


class ProfileCache:
    def __init__(self, bootstrap_servers: str, topic: str, partitions: int) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._partitions = partitions
        self._by_link: dict[str, dict[str, Contact]] = {}
        self._by_member: dict[tuple[str, str], str] = {}

    def get(self, contact_link_id: str) -> Contact | None:
        sides = self._by_link.get(contact_link_id, {})
        return next((sides[p] for p in _PREFERRED if p in sides), None)

    def by_member(self, platform: str, entity_id: str) -> Contact | None:
        link = self._by_member.get((platform, entity_id))
        return self.get(link) if link is not None else None

    def __len__(self) -> int:
        return len(self._by_link)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:  # tombstones are not written by Deskstream
            return
        if not is_profile_key(key):
            return  # a case's snapshot: its key says so, no need to decode it
        try:
            record = decode(value)
        except SchemaError:
            log.warning("profile cache skipped an unreadable record key=%s", key)
            return
        if not isinstance(record, Envelope) or not isinstance(record.data, Contact):
            return
        if record.link_id is None:
            return
        platform = record.source.platform.value
        self._by_link.setdefault(record.link_id, {})[platform] = record.data
        self._by_member[(platform, record.source.entity_id)] = record.link_id

    async def run(self) -> None:
        """Follow the topic forever; reconnects are aiokafka's job, crashes are logged."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            group_id=None,
            # a read from the start: an assignment's own offset lookup must not land at the
            # end (aiokafka applies any lookup to a partition waiting for one; KAFKA-7703)
            auto_offset_reset="earliest",
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
