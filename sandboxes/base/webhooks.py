"""Webhook delivery, at least once, the way help-desk platforms do it.

A platform builds and signs each notification, then hands it to :meth:`WebhookDispatcher.emit`,
which only queues it. Background senders POST it and follow the platform's
:class:`RetryPolicy` (which statuses are retried, how many attempts, how long to back off).
The dispatcher also applies the webhook faults of the current :class:`FaultProfile`:

* ``webhook_delay_ms``: every delivery waits this long before it is sent;
* ``webhook_duplicate_rate``: a delivery is sent twice, byte for byte;
* ``webhook_redelivery_rate``: a delivery that succeeded is sent again later as a new attempt,
  as platforms do when they never saw the acknowledgement (within the policy's attempts);
* ``webhook_reorder_window``: deliveries waiting in the queue are shuffled in groups of this
  size, so receivers see events out of order;
* ``webhook_limits`` (scaled by ``webhook_limits_count_scale`` / ``_time_scale``): the
  platform's own delivery limits (``RetryPolicy.limits``) apply: its circuit breaker, pause or
  suspension drops the deliveries that fall due while it holds
  (:mod:`sandboxes.base.governor`), counted in ``WebhookCounters.dropped``;
* ``webhooks_off``: the webhook is deactivated: every delivery that falls due is dropped
  (``dropped["deactivated"]``), retries included.

All random choices come from the injected, seeded ``rng``, so a run is repeatable.

Deliveries go out through an aiohttp client session rather than httpx: on loopback httpx
managed about 250 sequential POSTs/s against aiohttp's 3,000 on the same machine, and the
sandboxes must emit over 1,000 webhooks/s (``bench/sandbox_throughput.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from sandboxes.base.clock import Clock
from sandboxes.base.faults import FaultProfile
from sandboxes.base.governor import DeliveryGovernor, DeliveryLimits

__all__ = [
    "DEACTIVATED",
    "AttemptRenderer",
    "RetryPolicy",
    "WebhookCounters",
    "WebhookDispatcher",
]

logger = logging.getLogger(__name__)

#: Rebuilds and re-signs a notification for attempt ``n`` (2, 3, ...), for platforms whose
#: payload counts its delivery attempts. Without one, every attempt resends the same bytes.
AttemptRenderer = Callable[[int], tuple[bytes, Mapping[str, str]]]

#: ``WebhookCounters.dropped`` key of deliveries dropped while ``webhooks_off`` holds
DEACTIVATED = "deactivated"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a platform retries a failed delivery.

    ``retry_statuses=None`` retries every non-2xx status except ``never_retry_statuses``
    (Sunshine Conversations style); a set retries exactly those statuses. ``limits`` are the
    platform's breaker/pause/suspension thresholds, applied when the fault profile says so.
    """

    max_attempts: int = 3
    retry_statuses: frozenset[int] | None = frozenset({429, 500, 502, 503, 504})
    never_retry_statuses: frozenset[int] = frozenset()
    retry_on_transport_error: bool = True
    backoff_initial_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0
    limits: DeliveryLimits | None = None

    def should_retry(self, status: int | None) -> bool:
        """Whether an attempt that ended with ``status`` (None: no response) is retried."""
        if status is None:
            return self.retry_on_transport_error
        if 200 <= status < 300 or status in self.never_retry_statuses:
            return False
        return self.retry_statuses is None or status in self.retry_statuses

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        delay = self.backoff_initial_s * self.backoff_factor ** max(0, attempt - 1)
        return float(min(self.backoff_max_s, delay))


@dataclass
class WebhookCounters:
    """What the dispatcher did; ``sent`` counts 2xx answers including duplicates."""

    emitted: int = 0
    attempts: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    duplicated: int = 0
    redelivered: int = 0
    reordered: int = 0
    delayed: int = 0
    transport_errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    #: deliveries the platform did not send because a limit held, by the state that held
    #: (``breaker_open``, ``paused``, ``suspended``, ``deactivated``): lost for good, never
    #: retried
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_by_platform(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, object]:
        values: dict[str, object] = {
            name: getattr(self, name)
            for name in (
                "emitted",
                "attempts",
                "sent",
                "failed",
                "retried",
                "duplicated",
                "redelivered",
                "reordered",
                "delayed",
                "transport_errors",
            )
        }
        values["by_status"] = {str(k): v for k, v in sorted(self.by_status.items())}
        values["dropped_by_platform"] = self.dropped_by_platform
        values["dropped_by_state"] = dict(sorted(self.dropped.items()))
        return values


@dataclass(slots=True)
class _Delivery:
    seq: int
    body: bytes
    headers: Mapping[str, str]
    render: AttemptRenderer | None
    attempt: int = 1


class WebhookDispatcher:
    """Queues signed notifications and delivers them to ``target_url`` in the background."""

    def __init__(
        self,
        target_url: str,
        *,
        faults: FaultProfile,
        rng: random.Random,
        clock: Clock,
        retry_policy: RetryPolicy,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.target_url = target_url
        self.faults = faults
        self.retry_policy = retry_policy
        self.counters = WebhookCounters()
        self.governor = DeliveryGovernor(clock)
        self._rng = rng
        self._clock = clock
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._seq = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the senders (``emit`` does this on first use)."""
        if self._workers:
            return
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.retry_policy.timeout_s),
            connector=aiohttp.TCPConnector(limit=self._concurrency * 2),
            # Platforms send exactly the headers they sign; no client defaults added.
            skip_auto_headers=("User-Agent",),
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-sender-{i}")
            for i in range(self._concurrency)
        ]

    async def close(self) -> None:
        """Stop sending; undelivered notifications are dropped (the sandbox is going away)."""
        tasks = [*self._workers, *self._timers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        self._timers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- public API ----------------------------------------------------------------------

    async def emit(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        render_attempt: AttemptRenderer | None = None,
    ) -> None:
        """Queue one delivery of an already signed notification; returns at once."""
        await self.start()
        self._seq += 1
        self.counters.emitted += 1
        self._enqueue(_Delivery(self._seq, body, dict(headers), render_attempt))

    async def drain(self) -> None:
        """Wait until nothing is queued, in flight or waiting for a retry."""
        await self._idle.wait()

    @property
    def pending(self) -> int:
        """Deliveries queued, in flight or scheduled for a retry."""
        return self._pending

    def reset_counters(self) -> None:
        self.counters = WebhookCounters()

    @property
    def limits(self) -> DeliveryLimits | None:
        """The platform's delivery limits as the current fault profile applies them."""
        limits, faults = self.retry_policy.limits, self.faults
        if limits is None or not faults.webhook_limits:
            return None
        return limits.scaled(
            counts=faults.webhook_limits_count_scale, time=faults.webhook_limits_time_scale
        )

    # -- internals -----------------------------------------------------------------------

    def _enqueue(self, delivery: _Delivery) -> None:
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(delivery)

    def _finish(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    def _later(self, delay_s: float, delivery: _Delivery) -> None:
        """Requeue ``delivery`` after ``delay_s`` without holding a sender."""
        self._pending += 1

        async def requeue() -> None:
            try:
                await self._clock.sleep(delay_s)
                self._enqueue(delivery)
            finally:
                self._finish()

        task = asyncio.create_task(requeue())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _take_batch(self, first: _Delivery) -> list[_Delivery]:
        window = self.faults.webhook_reorder_window
        batch = [first]
        while len(batch) < window and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if len(batch) > 1:
            order = list(batch)
            self._rng.shuffle(batch)
            self.counters.reordered += sum(a is not b for a, b in zip(order, batch, strict=True))
        return batch

    async def _work(self) -> None:
        while True:
            first = await self._queue.get()
            for delivery in self._take_batch(first):
                try:
                    await self._deliver(delivery)
                except Exception:
                    # A sender must survive anything one delivery does; count it as failed.
                    logger.exception("webhook delivery crashed seq=%s", delivery.seq)
                    self.counters.failed += 1
                finally:
                    self._finish()

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> int | None:
        """Send one attempt and tell the platform's governor how it went."""
        status = await self._send(body, headers)
        limits = self.limits
        if limits is not None:
            self.governor.record(limits, status is not None and 200 <= status < 300)
        return status

    async def _send(self, body: bytes, headers: Mapping[str, str]) -> int | None:
        assert self._session is not None
        self.counters.attempts += 1
        try:
            async with self._session.post(self.target_url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counters.transport_errors += 1
            logger.warning(
                "webhook delivery transport error target=%s error=%s",
                self.target_url,
                type(exc).__name__,
            )
            return None
        self.counters.by_status[status] = self.counters.by_status.get(status, 0) + 1
        return status

    def _admitted(self, delivery: _Delivery) -> bool:
        """Whether the platform sends ``delivery`` now; counts it as dropped if not."""
        limits = self.limits
        if self.faults.webhooks_off:
            refused: str | None = DEACTIVATED
        else:
            refused = None if limits is None else self.governor.admit(limits)
        if refused is None:
            return True
        self.counters.dropped[refused] = self.counters.dropped.get(refused, 0) + 1
        logger.debug(
            "webhook delivery dropped by the platform seq=%s attempt=%s state=%s",
            delivery.seq,
            delivery.attempt,
            refused,
        )
        return False

    async def _deliver(self, delivery: _Delivery) -> None:
        faults = self.faults
        if faults.webhook_delay_ms:
            self.counters.delayed += 1
            await self._clock.sleep(faults.webhook_delay_ms / 1000)
        if not self._admitted(delivery):
            return
        body, headers = delivery.body, delivery.headers
        if delivery.attempt > 1 and delivery.render is not None:
            body, headers = delivery.render(delivery.attempt)
        status = await self._post(body, headers)
        ok = status is not None and 200 <= status < 300
        if ok:
            self.counters.sent += 1
        if (
            delivery.attempt == 1
            and faults.webhook_duplicate_rate
            and self._rng.random() < faults.webhook_duplicate_rate
        ):
            self.counters.duplicated += 1
            duplicate_status = await self._post(body, headers)
            if duplicate_status is not None and 200 <= duplicate_status < 300:
                self.counters.sent += 1
        policy = self.retry_policy
        nxt = _Delivery(
            delivery.seq, delivery.body, delivery.headers, delivery.render, delivery.attempt + 1
        )
        if ok:
            # Redeliveries use the retry budget, so a delivery is sent at most max_attempts times.
            if (
                faults.webhook_redelivery_rate
                and delivery.attempt < policy.max_attempts
                and self._rng.random() < faults.webhook_redelivery_rate
            ):
                self.counters.redelivered += 1
                self._later(policy.backoff(delivery.attempt), nxt)
            return
        if policy.should_retry(status) and delivery.attempt < policy.max_attempts:
            self.counters.retried += 1
            self._later(policy.backoff(delivery.attempt), nxt)
            return
        self.counters.failed += 1
        logger.warning(
            "webhook delivery failed target=%s seq=%s attempt=%s status=%s",
            self.target_url,
            delivery.seq,
            delivery.attempt,
            status,
        )
