"""Existing Intercom conversations read once, for ``deskstream backfill``: a search
(``POST /conversations/search``) for the conversations updated since a time and matching
the operator's filters (``state=open``: "every open conversation"), each read whole and sent
exactly as a poll sends it (``connectors.intercom.polled``), so it takes the same pipeline and
its events have the same ids as the poll's and the webhooks' (a backfill run twice, or beside
a poll, creates nothing twice).

One pass, then the read ends (a ``caught_up`` batch). The position is where it is among the
search's pages (``{"after": <cursor>}``): stored after each page, a run interrupted resumes at
the page it was on. ``SourceBatch.total`` carries the search's ``total_count``.

Filters are ``field=value`` pairs of the search's own fields (the 2.14 spec's table:
``state``, ``open``, ``priority``, ``admin_assignee_id``, ``tag_ids``, ``custom_attributes.<name>``,
...): a value of digits is sent as a number, ``true`` / ``false`` as booleans.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from connectors.base.source import Position, SourceBatch
from connectors.intercom.polling import IntercomConversationPoll

__all__ = ["IntercomBackfill", "search_query"]


def _typed(value: str) -> Any:
    if value.isdigit():
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    return value


def search_query(since: int | None, filters: Mapping[str, str]) -> dict[str, Any]:
    """The search: ``updated_at`` from ``since`` (inclusive, as Intercom's ``>`` is) and
    every filter, all of them (``AND``)."""
    parts: list[dict[str, Any]] = [
        {"field": "updated_at", "operator": ">", "value": since or 0},
        *({"field": k, "operator": "=", "value": _typed(v)} for k, v in sorted(filters.items())),
    ]
    return parts[0] if len(parts) == 1 else {"operator": "AND", "value": parts}


class IntercomBackfill(IntercomConversationPoll):
    kind = "conversations"  # deliveries are the poll's: the same ids

    def configure(self, *, since: int | None, filters: Mapping[str, str]) -> None:
        self.query = search_query(since, filters)

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        after: str | None = (position or {}).get("after") or None
        per_page = min(self._settings.batch_size, 150)
        while True:
            searched = self._clock()
            page = await self.client.search_page(
                self.model, self.query, per_page=per_page, starting_after=after
            )
            records = [(await self._read(item, searched)).record for item in page.items]
            after = page.next_cursor
            yield SourceBatch(
                records=records,
                position={"after": after},
                caught_up=after is None,
                detail=f"{len(records)} conversations",
                total=page.total,
            )
            if after is None:
                return
