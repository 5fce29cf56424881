"""Faust tables, declared in one place. Their changelogs are created by
``deskstream topics create`` (``app.topics.TABLES``), compacted and co-partitioned with the
topics that feed them.

``links``: link id → ``streams.state.LinkState`` in its compact encoding
(``streams.state_codec``: a version byte, at most a few KB), fed by ``deskstream.sync`` and
``deskstream.writes``, which are both keyed by link id: every event and write result of a link
is handled in the partition that holds its state.

``chat_sessions``: chat id → ``connectors.base.chat.ChatSession`` as JSON, fed by
``deskstream.chat`` (keyed by chat id): where each live chat continues on its desk.

``recent_events``: raw-topic key (``<connector>:<entity type>:<entity id>``) → the event ids
normalize sent for it lately (``streams.recent_ids``: bytes, at most 4 KB), fed by
``deskstream.raw``: a redelivery has the key of the original, so it is read in the partition
that holds the ids.

Production keeps them in RocksDB (``DESKSTREAM_TABLE_STORE=rocksdb://``, as ``compose.yaml``
sets it; the setting's default, ``memory://``, is for tests and the demo): on the worker's
disk, so a restarted worker reads only the changelog written since its last write, and
memory holds caches, not the tables. Faust's RocksDB defaults size those caches
for a machine of its own (three 64 MB write buffers and a 2 GB block cache, per partition);
``ROCKSDB_OPTIONS`` bounds them per partition, so a worker's tables stay within a few
hundred MB whatever they hold (``bench.links_table``: 1M links).
"""

from __future__ import annotations

from typing import Any

import faust

from app.settings import Settings

__all__ = [
    "ROCKSDB_OPTIONS",
    "declare_chat_sessions_table",
    "declare_links_table",
    "declare_recent_events_table",
]

_MB = 1024 * 1024
#: per table partition (one RocksDB database each): at most two 8 MB write buffers and a
#: 16 MB block cache (Faust's ``RocksDBOptions``; the memory store ignores them)
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 * _MB,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * _MB,
    "block_cache_compressed_size": 0,
    "target_file_size_base": 32 * _MB,
    "max_open_files": 256,
}


def declare_links_table(app: faust.App, settings: Settings) -> faust.types.TableT[str, bytes]:
    return app.Table(
        "links",
        default=None,
        partitions=settings.partitions,
        # Keys as before; values bytes as they are (Faust's "raw" serializer):
        # streams.state_codec encodes them, and reads the JSON of old releases.
        value_type=bytes,
        options=dict(ROCKSDB_OPTIONS),
        help="link id -> LinkState (members, registers, mirrors, recent input ids)",
    )


def declare_recent_events_table(
    app: faust.App, settings: Settings
) -> faust.types.TableT[bytes, bytes]:
    return app.Table(
        "recent_events",
        default=None,
        partitions=settings.partitions,
        # bytes both ways (Faust's "raw" serializer): keys are the raw records' keys as they
        # are, values streams.recent_ids bytes.
        key_type=bytes,
        value_type=bytes,
        options=dict(ROCKSDB_OPTIONS),
        help="raw-topic key -> event ids normalize sent lately (streams.recent_ids)",
    )


def declare_chat_sessions_table(app: faust.App, settings: Settings) -> faust.types.TableT[str, Any]:
    return app.Table(
        "chat_sessions",
        default=None,
        partitions=settings.partitions,
        options=dict(ROCKSDB_OPTIONS),
        help="chat id -> connectors.base.chat.ChatSession as JSON (fed by deskstream.chat)",
    )
