"""Case comments by polling, as a ``Source``: ``CaseComment`` publishes no change events
("Change Event Object Support", Change Data Capture Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_object_support.htm),
so the kind ``comments`` reads it with the SOQL cursor of ``polling`` (``SystemModstamp`` with
an overlap window and id-based dedupe, a full page drained by ``Id``).

Each query's new or changed comments become ``raw.record_delivery(read="poll")``, keyed by
their Case (``raw.partition_key``) and selecting ``Parent.<link field>``, so a comment on a
Case Deskstream created carries that Case's link. The position is the cursor's
(``{"cursor": PollPosition}``): the runtime stores it after each query's records, so a crash
repeats at most one query, whose records have the same delivery ids (``soql:<Id>:<stamp>``).
Once a poll has caught up the source waits ``POLL_SECONDS``.

Settings (``SOURCES__comments__...``): ``POLL_SECONDS`` (60), ``OVERLAP_SECONDS`` (300: how
far back each poll re-reads for commits that land late), ``BATCH_SIZE`` (records a query, at
most 2,000), ``START_LOOKBACK_SECONDS`` (first run only: how far back it starts, 1 hour).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import timedelta

from connectors.base.source import Position, SourceBatch
from connectors.salesforce.paging import poll
from connectors.salesforce.polling import MAX_LIMIT, PollPosition, PollStep, SoqlCursor
from connectors.salesforce.raw import record_delivery
from connectors.salesforce.source_org import SalesforceSource, raw_record
from schemas.errors import ConfigurationError

__all__ = ["SalesforceComments"]

_SOBJECT = "CaseComment"


class SalesforceComments(SalesforceSource):
    kind = "comments"

    def _setup(self) -> None:
        self.cursor = SoqlCursor(
            _SOBJECT,
            fields=self._org.read_fields(_SOBJECT),
            overlap=timedelta(seconds=self._settings.overlap_seconds),
            limit=min(self._settings.batch_size, MAX_LIMIT),
        )

    def first_position(self) -> PollPosition:
        """A first run starts ``START_LOOKBACK_SECONDS`` back (the overlap comes on top)."""
        back = timedelta(seconds=self._settings.start_lookback_seconds)
        return PollPosition(high_water=self._org.now() - back)

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        cursor = self._position(position)
        api_version = self._org.org.api_version
        while True:
            async with contextlib.aclosing(
                poll(self.cursor, cursor, self._org.fetch, api_version=api_version)
            ) as steps:
                async for step in steps:
                    yield self._batch(step)
                    cursor = step.position
            await asyncio.sleep(self._settings.poll_seconds)

    def _position(self, position: Position | None) -> PollPosition:
        if not position or position.get("cursor") is None:
            return self.first_position()
        try:
            return PollPosition.model_validate(position["cursor"])
        except ValueError as exc:
            raise ConfigurationError(
                f"the stored position of {self.name} is not a CaseComment cursor ({exc}); "
                "delete it to poll again from the lookback"
            ) from None

    def _batch(self, step: PollStep) -> SourceBatch:
        source = self.tag
        records = [
            raw_record(
                self.connector_id,
                record_delivery(self.connector_id, _SOBJECT, r, read="poll", source=source),
            )
            for r in step.changed
        ]
        return SourceBatch(
            records,
            {"cursor": step.position.model_dump(mode="json")},
            position_time=step.position.high_water,
            caught_up=not step.position.more,
            detail=f"{len(records)} comments",
        )
