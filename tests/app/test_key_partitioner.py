"""The workers place keyed records exactly where Kafka's default partitioner places them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

import app.key_partitioner as key_partitioner
from app.faust_app import build_app
from app.key_partitioner import KeyPartitioner, murmur2, partition_of
from app.settings import load_settings

SEED = 20261205


@pytest.mark.parametrize(
    ("key", "partition"),
    # The Java client's placements over 1,000 partitions (kafka-python's compatibility test)
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_the_java_clients_placement(key: bytes, partition: int) -> None:
    assert partition_of(key, 1000) == partition
    assert KeyPartitioner()(key, list(range(1000)), []) == partition


def test_the_same_hash_as_aiokafkas_on_keys_of_every_length() -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED}")
    for length in range(0, 90):
        for _ in range(40):
            key = rng.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key), (length, key)
    # every word value, high bits included, and the tails' bytes at 0xFF
    for key in (b"\xff" * 7, b"\x80\x00\x00\x00\xff", bytes(range(256))):
        assert murmur2(key) == aiokafka_murmur2(key)


def test_the_same_partition_as_aiokafkas_partitioner_whatever_the_partition_count() -> None:
    rng = random.Random(SEED)
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for _ in range(2000):
        key = f"lnk_{rng.getrandbits(128):032x}".encode()
        partitions = list(range(rng.randint(1, 64)))
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
        # the same key over another partition count: the hash is kept, not the partition
        more = list(range(len(partitions) + 5))
        assert ours(key, more, more) == theirs(key, more, more)


def test_a_key_is_hashed_once_until_the_cache_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[bytes] = []

    def counting(data: bytes) -> int:
        hashed.append(data)
        found: int = aiokafka_murmur2(data)
        return found

    monkeypatch.setattr(key_partitioner, "murmur2", counting)
    partitioner = KeyPartitioner(cached_keys=2)
    partitions = list(range(12))
    first = [partitioner(b"ticket-1", partitions, partitions) for _ in range(3)]
    assert hashed == [b"ticket-1"]
    partitioner(b"ticket-2", partitions, partitions)
    partitioner(b"ticket-3", partitions, partitions)  # full: everything forgotten, then kept
    assert partitioner(b"ticket-1", partitions, partitions) == first[0]
    assert hashed == [b"ticket-1", b"ticket-2", b"ticket-3", b"ticket-1"]


def test_a_record_without_a_key_goes_to_a_partition_with_a_leader() -> None:
    partitioner = KeyPartitioner()
    placed = {partitioner(None, [0, 1, 2, 3], [2]) for _ in range(50)}
    assert placed == {2}
    anywhere = {partitioner(None, [0, 1, 2, 3], []) for _ in range(200)}
    assert anywhere <= {0, 1, 2, 3}
    assert len(anywhere) > 1


def test_the_workers_producer_places_records_with_it(tmp_path: Path) -> None:
    bundle = build_app(load_settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"))
    producer: Any = bundle.app.producer
    placing = producer._settings_default()["partitioner"]  # what aiokafka's producer is given
    assert isinstance(placing, KeyPartitioner)
