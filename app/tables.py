"""Faust tables, declared in one place. Their changelogs are created by
``deskstream topics create`` (``app.topics.TABLES``), compacted and co-partitioned with the
topics that feed them.

``links``: link id → ``streams.state.LinkState`` as JSON, fed by ``deskstream.sync`` and
``deskstream.writes``, which are both keyed by link id: every event and write result of a link
is handled in the partition that holds its state.

``chat_sessions``: chat id → ``connectors.base.chat.ChatSession`` as JSON, fed by
``deskstream.chat`` (keyed by chat id): where each live chat continues on its desk.

``recent_events``: raw-topic key (``<connector>:<entity type>:<entity id>``) → the event ids
normalize sent for it lately (``streams.recent_ids``: bytes, at most 4 KB), fed by
``deskstream.raw``: a redelivery has the key of the original, so it is read in the partition
that holds the ids.
"""

from __future__ import annotations

from typing import Any

import faust

from app.settings import Settings

__all__ = ["declare_chat_sessions_table", "declare_links_table", "declare_recent_events_table"]


def declare_links_table(app: faust.App, settings: Settings) -> faust.types.TableT[str, Any]:
    return app.Table(
        "links",
        default=None,
        partitions=settings.partitions,
        # The app's default serializers apply: keys raw (UTF-8), values JSON.
        help="link id -> LinkState (members, known values, mirrors, fingerprints, thread)",
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
        help="raw-topic key -> event ids normalize sent lately (streams.recent_ids)",
    )


def declare_chat_sessions_table(app: faust.App, settings: Settings) -> faust.types.TableT[str, Any]:
    return app.Table(
        "chat_sessions",
        default=None,
        partitions=settings.partitions,
        help="chat id -> connectors.base.chat.ChatSession as JSON (fed by deskstream.chat)",
    )
