"""Notice a platform that has probably stopped sending webhooks.

Platforms stop sending without telling the receiver: Zendesk's circuit breaker drops a
webhook's events while it is open, and Intercom pauses, then suspends, a subscription after
repeated errors (``docs/architecture.md``, "Webhook freshness and loss"). Whatever was changed
on the platform meanwhile never reaches Deskstream, and nothing fails on our side.

The signal is our own writes. Every change a sink writes to a platform makes that platform
send a webhook back (the echo, which the sync stage then suppresses). So when this worker has
written at least ``min_writes`` changes to a connector, the oldest of them more than
``quiet_seconds`` ago, and no delivery from that connector has arrived since that oldest write,
the platform has probably stopped sending. Quiet nights raise nothing: without writes there is
no expectation.

Polls give a second, sharper signal (``polled``): a change the platform made *after* the last
delivery this worker received is one it should have pushed. When polling finds at least
``min_writes`` such changes (writes and polled changes count together), the oldest more than
``quiet_seconds`` ago, and still no delivery arrived, the verdict is the same, and the log line
says what polling found. Changes older than the watch itself are not counted (a first poll
reads an hour back). A connector in mode ``polling`` expects no webhooks at all and is never
judged (``polling_only``).

The view is one worker's. Behind a load balancer that spreads deliveries over the workers
(the cluster and compose stacks do), a worker that wrote 10 changes misses every echo with a
probability of ((n-1)/n)^10 for n workers: 2 % for three workers, 6 % for four, so raise
``min_writes`` on wide clusters. A worker that never receives webhooks (when the ingress routes
them elsewhere) must run with the watch off (``DESKSTREAM_WEBHOOK_QUIET_SECONDS=0``). For a
cluster-wide rule, alert on ``deskstream_webhooks_total{outcome="accepted"}`` not rising while
``deskstream_sink_writes_total{outcome="written"}`` does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.metrics import Metrics

__all__ = ["Silence", "WebhookWatch", "describe", "report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Silence:
    """A connector whose silence began or ended at this check."""

    connector_id: str
    silent: bool
    #: seconds without a delivery from the connector, up to this check when it became silent,
    #: up to the delivery that ended it otherwise (None: none since the worker began)
    quiet_for: float | None
    #: changes written to the connector since its last delivery
    writes: int
    #: changes polling found that the platform made after its last delivery
    polled: int = 0


@dataclass(slots=True)
class _Connector:
    last_delivery: float | None = None
    #: the last delivery on the wall clock, to compare with the platform's change times
    last_delivery_wall: float | None = None
    #: when the oldest write (or polled change) after the last delivery happened
    first_unanswered_write: float | None = None
    unanswered_writes: int = 0
    unanswered_polled: int = 0
    silent: bool = False
    #: how long the connector was quiet before its latest delivery
    last_gap: float | None = None


class WebhookWatch:
    """Deliveries and writes per connector, and the verdict of ``check``. Not thread-safe:
    the worker's event loop calls it."""

    def __init__(
        self,
        *,
        quiet_seconds: float,
        min_writes: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        polling_only: frozenset[str] = frozenset(),
        tolerance_s: float = 2.0,
    ) -> None:
        if min_writes < 1:
            raise ValueError("min_writes must be at least 1")
        self.quiet_seconds = quiet_seconds
        self.min_writes = min_writes
        self._clock = clock
        self._wall = wall
        self._started_wall = wall()
        #: connectors that take no webhooks by design (mode ``polling``): never judged
        self.polling_only = polling_only
        #: clock difference allowed between the platform's change times and ours
        self._tolerance = tolerance_s
        self._connectors: dict[str, _Connector] = {}

    @property
    def enabled(self) -> bool:
        return self.quiet_seconds > 0

    def _get(self, connector_id: str) -> _Connector:
        found = self._connectors.get(connector_id)
        if found is None:
            found = self._connectors[connector_id] = _Connector()
        return found

    def delivered(self, connector_id: str) -> None:
        """A webhook from ``connector_id`` was accepted: every write so far is answered."""
        state = self._get(connector_id)
        now = self._clock()
        state.last_gap = None if state.last_delivery is None else now - state.last_delivery
        state.last_delivery = now
        state.last_delivery_wall = self._wall()
        state.first_unanswered_write = None
        state.unanswered_writes = 0
        state.unanswered_polled = 0

    def wrote(self, connector_id: str) -> None:
        """A sink changed a record on ``connector_id``: the platform should send an echo."""
        if connector_id in self.polling_only:
            return
        state = self._get(connector_id)
        if state.first_unanswered_write is None:
            state.first_unanswered_write = self._clock()
        state.unanswered_writes += 1

    def polled(self, connector_id: str, changed_at: float) -> None:
        """A poll found a record of ``connector_id`` the platform changed at ``changed_at``
        (epoch seconds): a change it should have pushed too, unless a delivery came after."""
        if connector_id in self.polling_only:
            return
        state = self._get(connector_id)
        floor = self._started_wall if state.last_delivery_wall is None else state.last_delivery_wall
        if changed_at <= floor + self._tolerance:
            return  # before the last delivery (or before this worker watched): answered
        ago = max(0.0, self._wall() - changed_at)
        at = self._clock() - ago
        if state.first_unanswered_write is None or at < state.first_unanswered_write:
            state.first_unanswered_write = at
        state.unanswered_polled += 1

    def last_delivery_age(self, connector_id: str) -> float | None:
        state = self._connectors.get(connector_id)
        if state is None or state.last_delivery is None:
            return None
        return self._clock() - state.last_delivery

    def is_silent(self, connector_id: str) -> bool:
        state = self._connectors.get(connector_id)
        return state is not None and state.silent

    def check(self) -> list[Silence]:
        """Judge every connector; returns those whose verdict changed since the last check."""
        if not self.enabled:
            return []
        now = self._clock()
        changed: list[Silence] = []
        for connector_id, state in sorted(self._connectors.items()):
            expected = state.unanswered_writes + state.unanswered_polled
            silent = (
                state.first_unanswered_write is not None
                and expected >= self.min_writes
                and now - state.first_unanswered_write >= self.quiet_seconds
            )
            if silent != state.silent:
                state.silent = silent
                if not silent:  # a delivery ended it: how long the silence lasted
                    quiet_for = state.last_gap
                elif state.last_delivery is not None:
                    quiet_for = now - state.last_delivery
                else:
                    quiet_for = None
                changed.append(
                    Silence(
                        connector_id,
                        silent,
                        quiet_for,
                        state.unanswered_writes,
                        state.unanswered_polled,
                    )
                )
        return changed


def describe(change: Silence, platform: str) -> str:
    """The one log line an operator reads: what happened and what to do."""
    since = (
        "since this worker started"
        if change.quiet_for is None
        else f"for {int(change.quiet_for)} s"
    )
    if not change.silent:
        return (
            f"connector {change.connector_id} ({platform}) is sending webhooks again after "
            f"being quiet {since}"
        )
    hint = _PLATFORM_HINTS.get(platform, "check the webhook's status on the platform")
    evidence = []
    if change.polled:
        evidence.append(f"polling found {change.polled} changes made on {platform} since")
    if change.writes:
        evidence.append(
            f"this worker wrote {change.writes} changes to it, each of which should have come "
            "back as a webhook"
        )
    if change.polled:
        consequence = "Polling is bringing those changes in meanwhile, up to a poll interval late"
    else:
        consequence = (
            f"Changes made on {platform} meanwhile were not delivered to Deskstream and are not "
            "synced until those records change again (or run it with MODE=both to poll)"
        )
    return (
        f"connector {change.connector_id} ({platform}) has probably stopped sending webhooks: "
        f"none arrived {since}, although {' and '.join(evidence)}. {hint}. {consequence}"
    )


_PLATFORM_HINTS = {
    "zendesk": (
        "Zendesk drops a webhook's events while its circuit breaker is open and deactivates "
        "webhooks that keep failing: check Admin Center > Apps and integrations > Webhooks > "
        "the webhook's activity and status, and reactivate it"
    ),
    "intercom": (
        "Intercom pauses a webhook subscription after repeated errors and can suspend it: "
        "check the app's Webhooks page in the Developer Hub and resume it"
    ),
}


def report(watch: WebhookWatch, metrics: Metrics, platforms: Mapping[str, str]) -> None:
    """One check: update the gauges and log each change of verdict (``platforms`` maps
    connector ids to platforms)."""
    for change in watch.check():
        platform = platforms.get(change.connector_id, "unknown platform")
        if change.silent:
            log.warning(describe(change, platform))
        else:
            log.info(describe(change, platform))
    for connector_id in platforms:
        metrics.webhooks_silent.labels(connector_id).set(int(watch.is_silent(connector_id)))
        age = watch.last_delivery_age(connector_id)
        if age is not None:
            metrics.webhook_last_delivery_age_seconds.labels(connector_id).set(age)
