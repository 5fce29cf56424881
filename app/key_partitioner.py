"""Which partition a keyed record goes to: Kafka's default, at a fraction of its cost.

Every keyed record a worker writes through its producer (a webhook's raw record, a sink's
write result and audit record, a dead letter, a batch's records in ``app.agents.batch_send``)
is placed by murmur2 of its key over the topic's partitions, as the Java client and aiokafka's
``DefaultPartitioner`` place it: keyed topics stay co-partitioned with what other clients and
Faust's tables write, so the hash must be exactly Kafka's.

aiokafka's ``murmur2`` is pure Python that assembles each 4-byte word from single bytes and
masks after every step: 5.0 µs for a 36-byte link id, 2 % of a syncing worker's CPU in a
py-spy profile (``docs/performance.md``). ``murmur2`` here unpacks the words in one
``struct`` call and masks once per product (2.4 µs), and ``KeyPartitioner``
remembers the hash of the keys it met last: a link's or a ticket's key comes back with every
one of its records. ``tests/app/test_key_partitioner.py`` compares both with aiokafka's on
keys of every length.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner

__all__ = ["KeyPartitioner", "murmur2", "partition_of"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_KEYLESS = DefaultPartitioner()
#: key hashes a partitioner keeps (about 2 MB with link-sized keys; all forgotten when full)
CACHED_KEYS = 16_384


@functools.lru_cache(maxsize=128)  # keys up to 512 bytes; longer ones build their own
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``), as an
    unsigned 32-bit value: the same as ``aiokafka.partitioner.murmur2``."""
    length = len(data)
    h = _SEED ^ length
    whole = length >> 2
    if whole:
        for k in _words(whole).unpack_from(data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra:
        tail = length & ~3
        if extra == 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` (numbered from 0) Kafka's default partitioner gives
    ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitioner:
    """aiokafka's ``DefaultPartitioner`` (the producer's ``partitioner``; Faust's
    ``producer_partitioner``), each key's hash remembered."""

    def __init__(self, cached_keys: int = CACHED_KEYS) -> None:
        self._cached_keys = cached_keys
        self._hashes: dict[bytes, int] = {}

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:  # any partition, one with a leader if there is one: aiokafka's choice
            chosen: int = _KEYLESS(None, all_partitions, available)
            return chosen
        found = self._hashes.get(key)
        if found is None:
            if len(self._hashes) >= self._cached_keys:
                self._hashes.clear()
            found = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[found % len(all_partitions)]
