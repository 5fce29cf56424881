"""Runs one pull-based source while this worker holds its lease: records to the raw topic,
then the position, in that order, forever; a failure backs off and starts again.

The order is the guarantee (``connectors.base.source``): a batch's position is stored only
after Kafka acknowledged every raw record of the batch, so a worker killed at any moment
leaves a stored position at or before what reached Kafka. The next holder re-reads at most
the batch in flight; its records carry the same delivery ids, hence the same event ids, and
the sync stage's dedupe (``streams.sync``, step 1) drops the copies.

Failures of the source or of Kafka end the run, never the worker: one error line (the first
of a streak, or when the reason changes), ``deskstream_source_errors_total``, a backoff from
1 s doubling to ``source_max_backoff_seconds`` (a 429's Retry-After when longer), and a new
run from the last stored position. Knows nothing of Faust: the lease is the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from app.metrics import Metrics
from connectors.base.source import Position, RawRecord, Source, SourceBatch
from schemas.errors import RateLimitedError

__all__ = ["LeaseLostError", "PublishRaw", "SourceRunner"]

log = logging.getLogger(__name__)

#: writes records to the raw topic and returns once Kafka acknowledged all of them
PublishRaw = Callable[[list[RawRecord]], Awaitable[None]]


class LeaseLostError(Exception):
    """This worker no longer holds the source's slot: it must not write a position."""


class SourceRunner:
    def __init__(
        self,
        build: Callable[[], Source],
        *,
        name: str,
        publish: PublishRaw,
        load: Callable[[], Awaitable[Position | None]],
        store: Callable[[SourceBatch], Awaitable[None]],
        holds_lease: Callable[[], bool],
        metrics: Metrics,
        max_backoff_s: float = 60.0,
        on_stored: Callable[[SourceBatch], None] | None = None,
    ) -> None:
        self.name = name
        self._build = build
        self._publish = publish
        self._load = load
        self._store = store
        self._holds_lease = holds_lease
        self._metrics = metrics
        self._max_backoff = max_backoff_s
        #: told of every batch once stored (the webhook watch reads the polled changes)
        self._on_stored = on_stored
        #: failed runs since the last stored batch, and the reason last logged
        self._failures = 0
        self._last_error = ""

    async def run(self) -> None:
        """Until cancelled (the lease is lost, the worker stops) or the lease is gone."""
        position: Position | None = None
        loaded = False
        self._metrics.source_running.labels(self.name).set(1)
        try:
            while True:
                source: Source | None = None
                try:
                    if not loaded:
                        position, loaded = await self._load(), True
                        self._metrics.source_starts.labels(self.name).inc()
                        log.info(
                            "source lease acquired source=%s position=%s",
                            self.name,
                            "none (first run)" if position is None else position,
                        )
                    source = self._build()
                    position = await self._follow(source, position)
                except LeaseLostError:
                    log.warning("source lease lost before storing source=%s; stopping", self.name)
                    return
                except Exception as exc:  # the source's or Kafka's failure: retry, never die
                    self._failures += 1
                    failures = self._failures
                    wait = min(self._max_backoff, 2.0 ** (failures - 1))
                    if isinstance(exc, RateLimitedError):
                        wait = max(wait, exc.retry_after)
                    reason = f"{type(exc).__name__}: {exc}"
                    self._metrics.source_errors.labels(self.name).inc()
                    if reason != self._last_error:
                        log.error(
                            "source failed source=%s error=%s; nothing after the stored position "
                            "is lost: starting again from it in %.0f s (failures in a row: %d)",
                            self.name,
                            reason,
                            wait,
                            failures,
                        )
                    self._last_error = reason
                    await asyncio.sleep(wait)
                finally:
                    if source is not None:
                        with contextlib.suppress(Exception):
                            await source.aclose()
        finally:
            self._metrics.source_running.labels(self.name).set(0)

    async def _follow(self, source: Source, position: Position | None) -> Position | None:
        """Read batches from ``position``; returns the last stored position if the source's
        iterator ends. Every batch: records acknowledged, then the position stored."""
        batches = source.batches(position)
        try:
            async for batch in batches:
                if batch.records:
                    await self._publish(batch.records)
                if batch.position != position:
                    if not self._holds_lease():
                        raise LeaseLostError(self.name)
                    await self._store(batch)
                    position = batch.position
                self._observe(batch)
        finally:
            # An async generator left mid-way runs its cleanup now, not at garbage collection.
            close = getattr(batches, "aclose", None)
            if close is not None:
                await close()
        return position

    def _observe(self, batch: SourceBatch) -> None:
        name = self.name
        if self._on_stored is not None:
            self._on_stored(batch)
        if self._failures:
            log.info("source recovered source=%s after %d failed runs", name, self._failures)
            self._failures, self._last_error = 0, ""
        self._metrics.source_batches.labels(name).inc()
        self._metrics.source_records.labels(name).inc(len(batch.records))
        if batch.position_time is not None:
            stamp = batch.position_time.timestamp()
            self._metrics.source_position_time.labels(name).set(stamp)
            lag = 0.0 if batch.caught_up else max(0.0, time.time() - stamp)
            self._metrics.source_lag_seconds.labels(name).set(lag)
        elif batch.caught_up:
            self._metrics.source_lag_seconds.labels(name).set(0.0)
        if batch.records:
            log.info(
                "source batch stored source=%s records=%d caught_up=%s %s",
                name,
                len(batch.records),
                batch.caught_up,
                batch.detail,
            )
