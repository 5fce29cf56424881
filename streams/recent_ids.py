"""The event ids one source entity produced lately, as a few compact bytes.

Normalize drops an event whose id it already sent to the canonical topic (a redelivered
webhook, a source read again, the raw topic replayed), so downstream sees each event once.
What it remembers per raw-topic key is bounded twice, so a busy entity can never grow its
state without limit:

- in **time**: an id first seen more than ``window`` seconds before the record being read is
  forgotten;
- in **count**: at most ``max_ids`` ids (the newest are kept).

Encoding: one version byte, then per id 8 bytes of its BLAKE2b digest and 4 bytes of the
first-seen time (Unix seconds, big-endian), oldest first: 12 bytes per id, so
``MAX_IDS_LIMIT`` ids fit in 4 KB. A digest collision needs two ids of one entity among at
most a few hundred to share 64 bits: it is not a practical concern. The membership test
searches the bytes without decoding them (``bytes.find`` runs in C), so a duplicate costs a
few microseconds and a fresh event one re-encode.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "DIGEST_BYTES",
    "ENTRY_BYTES",
    "MAX_IDS_LIMIT",
    "Remembered",
    "contains",
    "digest",
    "remember",
    "size_of",
]

VERSION = 1
DIGEST_BYTES = 8
_ENTRY = struct.Struct(">8sI")
_TIME = struct.Struct(">I")
ENTRY_BYTES = _ENTRY.size
#: the most ids a key may hold: the state stays within 4 KB (issue 11's bound for link state)
MAX_IDS_LIMIT = (4096 - 1) // ENTRY_BYTES


def digest(event_id: str) -> bytes:
    """The 8 bytes an event id is remembered by."""
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def _valid(state: bytes | None) -> bytes:
    """``state`` when it is ours, else nothing remembered (a newer format is ignored rather
    than misread: at worst an event passes twice, never one is lost)."""
    if not state or state[0] != VERSION or (len(state) - 1) % ENTRY_BYTES:
        return b""
    return state


def size_of(state: bytes | None) -> int:
    """How many ids ``state`` holds."""
    return (len(_valid(state)) - 1) // ENTRY_BYTES if _valid(state) else 0


@functools.cache
def _times(count: int) -> struct.Struct:
    """Reads the first-seen times of ``count`` entries in one call (digests skipped)."""
    return struct.Struct(">" + "8xI" * count)


def _find(data: bytes, key: bytes, start: int = 1) -> int:
    """Where the entry with digest ``key`` starts in ``data`` (-1: not there)."""
    while (found := data.find(key, start)) != -1:
        if (found - 1) % ENTRY_BYTES == 0:  # a digest, not bytes straddling two entries
            return found
        start = found + 1
    return -1


def contains(state: bytes | None, key: bytes, *, now: int, window: int) -> bool:
    """Was the id with digest ``key`` seen at most ``window`` seconds before ``now``?"""
    data = _valid(state)
    found = _find(data, key)
    if found == -1:
        return False
    seen: int = _TIME.unpack_from(data, found + DIGEST_BYTES)[0]
    return now - seen <= window


class Remembered(NamedTuple):
    """What ``remember`` gives (a tuple: normalize makes one per raw record)."""

    state: bytes
    #: ids dropped by the count bound while still inside the time window: a redelivery of
    #: one of them would pass (downstream stages still drop it by its id)
    evicted: int


def remember(
    state: bytes | None, keys: Iterable[bytes], *, now: int, window: int, max_ids: int
) -> Remembered:
    """``state`` with ``keys`` added as seen at ``now``; expired ids dropped (one added with
    an older time than an id before it may wait, below), then the oldest beyond ``max_ids``.
    An id already there keeps its first-seen time.

    Works on the bytes: entries are re-packed only when some expired, so remembering an id
    costs about the same on a key's 10th and 256th (normalize calls this once per record)."""
    if not 1 <= max_ids <= MAX_IDS_LIMIT:
        raise ValueError(f"max_ids must be between 1 and {MAX_IDS_LIMIT}, got {max_ids}")
    data = _valid(state) or bytes([VERSION])
    oldest = now - window
    count = (len(data) - 1) // ENTRY_BYTES
    keys = list(keys)
    # Entries are in the order they were added, so the first is nearly always the oldest:
    # while it is in the window and no eviction is near, nothing has expired. An id
    # added with an older time than one before it (times that went backwards) may have
    # expired further in: it is dropped once the first one expires, or before an eviction,
    # which counts only ids still in the window. Until then it only takes room: ``contains``
    # reads its time. Reading every entry's time on every call was most of this function's
    # cost (9 us with 250 ids), and normalize calls it for every record.
    may_have_expired = count and (
        _TIME.unpack_from(data, 1 + DIGEST_BYTES)[0] < oldest or count + len(keys) > max_ids
    )
    if may_have_expired and min(_times(count).unpack_from(data, 1)) < oldest:
        kept = [entry for entry in _ENTRY.iter_unpack(data[1:]) if entry[1] >= oldest]
        data = bytes([VERSION]) + b"".join(_ENTRY.pack(*entry) for entry in kept)
    added = [
        _ENTRY.pack(key, max(0, now))
        for key in dict.fromkeys(keys)  # each once, in order
        if _find(data, key) == -1
    ]
    if added:
        data += b"".join(added)
    evicted = max(0, (len(data) - 1) // ENTRY_BYTES - max_ids)
    if evicted:
        data = bytes([VERSION]) + data[1 + evicted * ENTRY_BYTES :]
    return Remembered(data, evicted)
