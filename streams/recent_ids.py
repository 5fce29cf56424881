"""The event ids one source entity produced lately, as a few compact bytes.

Normalize drops an event whose id it already sent to the canonical topic (a redelivered
webhook, a source read again, the raw topic replayed), so downstream sees each event once.
What it remembers per raw-topic key is bounded twice, so a busy entity can never grow its
state without limit:

- in **time**: an id first seen more than ``window`` seconds before the record being read is
  forgotten;
- in **count**: at most ``max_ids`` ids (the newest are kept).

Encoding: one version byte, then per id 8 bytes of its BLAKE2b digest and 4 bytes of the
first-seen time (Unix seconds, big-endian), in order of that time: 12 bytes per id, so
``MAX_IDS_LIMIT`` ids fit in 4 KB. A digest collision needs two ids of one entity among at
most a few hundred to share 64 bits: it is not a practical concern. The membership test
searches the bytes without decoding them (``bytes.find`` runs in C), so a duplicate costs a
few microseconds and a fresh event one re-encode.
"""

from __future__ import annotations

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
_HEADER = bytes([VERSION])
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


def _find(data: bytes, key: bytes, start: int = 1) -> int:
    """Where the entry with digest ``key`` starts in ``data``, searched from ``start`` (the
    start of an entry); -1: not there."""
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
    """``state`` with ``keys`` added as seen at ``now``; expired ids dropped, then the oldest
    beyond ``max_ids``. An id already there, and still in the window, keeps its first-seen
    time; one there but expired is seen afresh.

    Entries are kept in order of first-seen time: an id is appended, unless ``now`` is older
    than the newest entry's time (a record's time that went backwards), when it is inserted
    in its place. Expired ids are then always at the front and the count bound's victims are
    the oldest, so neither needs every entry's time read: remembering an id costs about the
    same on a key's 10th and its 256th, with the bound evicting on every call (normalize
    calls this once per record, the sync stage once per input).

    A state written by a release that appended out of order (before 2026-12-05; the format
    is the same) may hold an expired id further in: ``contains`` reads its time, so it is
    never taken for a duplicate, and it goes when it reaches the front or the bound."""
    if not 1 <= max_ids <= MAX_IDS_LIMIT:
        raise ValueError(f"max_ids must be between 1 and {MAX_IDS_LIMIT}, got {max_ids}")
    data = _valid(state) or _HEADER
    oldest = now - window
    first = 1  # the first entry still in the window
    while first < len(data) and _time_at(data, first) < oldest:
        first += ENTRY_BYTES
    at = max(0, now)
    keys = list(keys)
    added: list[bytes] = []
    for key in keys if len(keys) == 1 else dict.fromkeys(keys):  # each once, in order
        found = _find(data, key, first)
        if found != -1:
            if _time_at(data, found) >= oldest:
                continue
            data = data[:found] + data[found + ENTRY_BYTES :]  # an old release's order
        added.append(_ENTRY.pack(key, at))
    end = len(data)  # where the added go: after every entry first seen at or before `at`
    while added and end > first and _time_at(data, end - ENTRY_BYTES) > at:
        end -= ENTRY_BYTES
    if first > 1 or end < len(data):
        data = _HEADER + data[first:end] + b"".join(added) + data[end:]
    elif added:
        data += b"".join(added)
    excess = (len(data) - 1) // ENTRY_BYTES - max_ids
    evicted = 0
    if excess > 0:
        evicted = sum(_time_at(data, 1 + n * ENTRY_BYTES) >= oldest for n in range(excess))
        data = _HEADER + data[1 + excess * ENTRY_BYTES :]
    return Remembered(data, evicted)


def _time_at(data: bytes, entry: int) -> int:
    """The first-seen time of the entry starting at ``entry``."""
    seen: int = _TIME.unpack_from(data, entry + DIGEST_BYTES)[0]
    return seen
