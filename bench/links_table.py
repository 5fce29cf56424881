"""The ``links`` table in RocksDB with a million links: the worker's memory, the disk, and a
restart, against issue 11's target (1M links in < 1 GB of worker memory).

    .venv/bin/python -m bench.links_table [--links 1000000] [--partitions 8] [--dir DIR]

Writes ``--links`` link states (each the state of a link after a hundred inputs,
``bench.link_history``, with its own ids and its own recent input ids) into one RocksDB
database per partition, opened exactly as Faust's RocksDB store opens them with the options
the worker declares (``app.tables.ROCKSDB_OPTIONS``), in write batches as a worker recovering
from the changelog writes them. Then closes them (the worker stops), opens them again (the
next start), counts the links and reads a sample back through ``streams.state_codec``.
Prints this process's resident memory (it holds what a worker's tables would: Python, the
databases' caches), its peak, the size on disk, and what the in-memory store would need.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import Rdict, WriteBatch

from app.tables import ROCKSDB_OPTIONS
from bench.figures import at_most, row
from bench.link_history import CONFIG, History
from bench.link_state import everything_before
from streams import state_codec
from streams.outbox import Position, step
from streams.state import LinkState
from streams.sync import SyncPlanner

TARGET_RSS_MB = 1024.0
BATCH = 1000


def _template(inputs: int = 100) -> LinkState:
    """A link's state after ``inputs`` inputs of a busy conversation."""
    planner, history = SyncPlanner(CONFIG), History()
    raw: bytes | None = None
    for n in range(inputs):
        done = step(
            planner,
            raw,
            history.next(),
            position=Position("deskstream.sync", 0, n),
            delivered_below=everything_before(n),
            may_have_run=False,
            now=history.world.tick(),
        )
        raw = done.state if done.state is not None else raw
        history.answer(done.commands)
    assert raw is not None
    return state_codec.decode(raw)


def _link(template: LinkState, n: int, rng: random.Random) -> tuple[bytes, bytes]:
    """Link ``n``: its table key (as Faust's json key serializer writes it) and value."""
    link = f"lnk_{n:032x}"
    state = state_codec.decode(state_codec.encode(template))
    state.link_id = link
    state.members = {"intercom": str(215_000_000_000 + n), "zendesk": str(41_000_000 + n)}
    # Its own recent input ids: random digests (they do not compress), the template's times.
    seen = bytearray(state.seen)
    for offset in range(1, len(seen), 12):
        seen[offset : offset + 8] = rng.randbytes(8)
    state.seen = bytes(seen)
    return json.dumps(link).encode(), state_codec.encode(state)


def _rss_mb() -> tuple[float, float]:
    """(resident, peak resident) memory of this process, MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _open(folder: Path, partition: int) -> Rdict:
    """A partition's database, opened as Faust's RocksDB store opens it."""
    options = RocksDBOptions(**ROCKSDB_OPTIONS, use_rocksdict=True)
    db: Rdict = options.open(folder / f"links-{partition}.db")
    return db


def _disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1024 / 1024


def run(links: int, partitions: int, folder: Path) -> list[str]:
    rng = random.Random(11)
    template = _template()
    started = time.perf_counter()
    dbs = [_open(folder, p) for p in range(partitions)]
    batches = [WriteBatch(raw_mode=True) for _ in range(partitions)]
    value_bytes = 0
    for n in range(links):
        key, value = _link(template, n, rng)
        value_bytes += len(value)
        partition = zlib.crc32(key) % partitions
        batches[partition].put(key, value)
        if batches[partition].len() >= BATCH:
            dbs[partition].write(batches[partition])
            batches[partition] = WriteBatch(raw_mode=True)
    for db, batch in zip(dbs, batches, strict=True):
        db.write(batch)
        db.flush()
    wrote_s = time.perf_counter() - started
    written_rss, written_peak = _rss_mb()
    for db in dbs:
        db.close()
    del dbs
    # The next start: the same databases, opened again.
    dbs = [_open(folder, p) for p in range(partitions)]
    counted = sum(sum(1 for _ in db.keys()) for db in dbs)  # noqa: SIM118 (an Rdict)
    sample = rng.sample(range(links), min(100_000, links))
    started = time.perf_counter()
    found = 0
    for n in sample:
        link = json.dumps(f"lnk_{n:032x}").encode()
        held: bytes | None = dbs[zlib.crc32(link) % partitions].get(link)
        if held is not None and state_codec.decode(held).link_id == f"lnk_{n:032x}":
            found += 1
    read_us = (time.perf_counter() - started) / len(sample) * 1e6
    rss, peak = _rss_mb()
    disk = _disk_mb(folder)
    for db in dbs:
        db.close()
    in_memory_gb = links * (value_bytes / links + _dict_entry_overhead()) / 1024**3
    return [
        f"links table in RocksDB: {links:,} links in {partitions} partitions, one database "
        f"each, options {ROCKSDB_OPTIONS}",
        f"wrote {value_bytes / links:.0f} bytes a link on average in {wrote_s:.0f} s; "
        f"{disk:,.0f} MB on disk",
        "",
        row("measure", "figure", "target", "ratio"),
        row("RSS after writing, MB", f"{written_rss:.0f}", f"{TARGET_RSS_MB:.0f}",
            at_most(written_rss, TARGET_RSS_MB)),
        row("RSS after restart + reads, MB", f"{rss:.0f}", f"{TARGET_RSS_MB:.0f}",
            at_most(rss, TARGET_RSS_MB)),
        row("peak RSS, MB", f"{max(written_peak, peak):.0f}", f"{TARGET_RSS_MB:.0f}",
            at_most(max(written_peak, peak), TARGET_RSS_MB)),
        row("links there after the restart", f"{counted:,}", f"{links:,}",
            "ok" if counted == links else "LOST"),
        row("sample read back and decoded", f"{found:,}", f"{len(sample):,}",
            "ok" if found == len(sample) else "LOST"),
        row("read + decode, µs per link", f"{read_us:.1f}", "", None),
        "(ratio > 1 meets the target)",
        f"the memory:// store would hold the same links in ≈ {in_memory_gb:.1f} GB of heap "
        f"(values and dict entries; rusage peak {_maxrss_mb():.0f} MB)",
    ]  # fmt: skip


def _dict_entry_overhead() -> float:
    """Bytes a Python dict entry with a bytes key and a bytes value costs beyond the value's
    own bytes (two bytes objects' headers, the key, the table slot)."""
    return 33 + 33 + 40 + 24


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-links-", dir=args.dir))
    try:
        print("\n".join(run(args.links, args.partitions, folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
