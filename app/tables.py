"""Faust tables, declared in one place.

``links``: link id → ``streams.state.LinkState`` as JSON. Its changelog is created by
``deskstream topics create`` (``app.topics.TABLES``), compacted and co-partitioned with
``deskstream.sync`` and ``deskstream.writes``, which are both keyed by link id: every event and
write result of a link is handled in the partition that holds its state.
"""

from __future__ import annotations

from typing import Any

import faust

from app.settings import Settings

__all__ = ["declare_links_table"]


def declare_links_table(app: faust.App, settings: Settings) -> faust.types.TableT[str, Any]:
    return app.Table(
        "links",
        default=None,
        partitions=settings.partitions,
        # The app's default serializers apply: keys raw (UTF-8), values JSON.
        help="link id -> LinkState (members, known values, mirrors, fingerprints, thread)",
    )
