"""Platform-side delivery limits: circuit breakers, pauses and suspensions of webhooks.

Help-desk platforms protect themselves from endpoints that keep failing: Zendesk opens a
circuit breaker when too many of a webhook's requests fail within a window, Intercom pauses a
subscription after a run of consecutive errors and suspends a private app's subscription after
days of errors. While such a limit holds the platform sends nothing, and what falls due is
dropped, not queued: a receiver that was down too long has lost those notifications and must
reconcile. The documented numbers, and the pages they come from, are in each platform's module
(``sandboxes/zendesk/events.py``, ``sandboxes/intercom/webhooks.py``).

:class:`DeliveryLimits` is the plain-value configuration a platform puts on its
:class:`~sandboxes.base.webhooks.RetryPolicy`. :class:`DeliveryGovernor` is the state
machine the dispatcher asks before every attempt (:meth:`DeliveryGovernor.admit`) and tells
the outcome of every attempt (:meth:`DeliveryGovernor.record`), on the sandbox clock:

* ``sending``: deliveries go out; outcomes are counted in a sliding window;
* ``limits.open_state`` (``breaker_open`` for Zendesk, ``paused`` for Intercom): a limit
  tripped; every delivery that falls due is dropped until the open period ends;
* ``probing``: the open period ended and the next delivery tests the endpoint
  (``probe_after_open``); a success closes the breaker, a failure opens it again, and
  deliveries due meanwhile are dropped;
* ``suspended``: errors went on for longer than ``suspend_after_s`` without a single success;
  nothing is sent until :meth:`DeliveryGovernor.resume` (Intercom's "Set live", served as
  ``POST /_sandbox/webhooks/resume``).

Whether limits apply at all is the fault profile's choice (``webhook_limits``), and the profile
can scale the documented sizes down (``webhook_limits_count_scale``,
``webhook_limits_time_scale``): a test can neither fail a thousand deliveries cheaply nor wait
seven days on a real clock.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from sandboxes.base.clock import Clock

__all__ = ["PROBING", "SENDING", "SUSPENDED", "DeliveryGovernor", "DeliveryLimits"]

logger = logging.getLogger(__name__)

SENDING = "sending"
PROBING = "probing"
SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    """When a platform stops sending to a failing endpoint, and for how long.

    A limit trips when, within the last ``window_s`` seconds, errors exceed ``max_errors``,
    or the error share reaches ``max_error_rate`` over at least ``min_requests`` requests, or
    consecutive errors exceed ``max_consecutive_errors`` (None disables a rule). An error is
    any attempt without a 2xx answer, timeouts and refused connections included.
    """

    open_state: str
    window_s: float
    open_s: float
    max_errors: int | None = None
    max_error_rate: float | None = None
    min_requests: int = 1
    max_consecutive_errors: int | None = None
    probe_after_open: bool = False
    suspend_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.open_state in (SENDING, PROBING, SUSPENDED):
            raise ValueError(f"open_state {self.open_state!r} names another state")
        if self.window_s <= 0 or self.open_s < 0:
            raise ValueError("window_s must be positive and open_s not negative")
        if self.max_error_rate is not None and not 0 < self.max_error_rate <= 1:
            raise ValueError("max_error_rate must be in (0, 1]")

    def scaled(self, *, counts: float = 1.0, time: float = 1.0) -> DeliveryLimits:
        """These limits with error counts times ``counts`` (rounded up, at least 1) and
        windows and periods times ``time``; rates and ``min_requests`` are left alone, so
        a scaled breaker still needs a few requests before a share means anything."""

        def count(value: int | None) -> int | None:
            return None if value is None else max(1, math.ceil(value * counts))

        return replace(
            self,
            window_s=self.window_s * time,
            open_s=self.open_s * time,
            max_errors=count(self.max_errors),
            max_consecutive_errors=count(self.max_consecutive_errors),
            suspend_after_s=None if self.suspend_after_s is None else self.suspend_after_s * time,
        )


class DeliveryGovernor:
    """The platform's memory of one endpoint's failures; see the module docstring."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget every failure, as a freshly created webhook."""
        self.trips = 0
        self.state = SENDING
        self._since = self._clock.now()
        self._reopens_at: float | None = None
        self._outcomes: deque[tuple[float, bool]] = deque()  # (monotonic, ok) in the window
        self._streak: deque[float] = deque()  # times of the current run of errors
        self._failing_since: float | None = None  # monotonic start of the unbroken errors
        self._failing_since_wall: datetime | None = None

    def resume(self) -> None:
        """An operator sets the subscription live again (or re-activates the webhook)."""
        previous, trips = self.state, self.trips
        self.reset()
        self.trips = trips  # the history of trips stays visible to operators
        logger.info("webhook deliveries resumed by an operator previous_state=%s", previous)

    def admit(self, limits: DeliveryLimits) -> str | None:
        """None if a delivery may be sent now, else the state that drops it."""
        if self.state == SUSPENDED:
            return SUSPENDED
        if self.state == PROBING:
            return limits.open_state
        if self.state == limits.open_state:
            assert self._reopens_at is not None
            if self._clock.monotonic() < self._reopens_at:
                return limits.open_state
            if limits.probe_after_open:
                # This delivery is the test request; others wait for its answer (dropped).
                self._enter(PROBING)
            else:
                self._enter(SENDING)
        elif self.state != SENDING:
            # The profile switched to other limits while tripped: start over under them.
            self._enter(SENDING)
        return None

    def record(self, limits: DeliveryLimits, ok: bool) -> None:
        """Count one attempt's outcome; may trip, close or suspend."""
        now = self._clock.monotonic()
        if ok:
            self._streak.clear()
            self._failing_since = self._failing_since_wall = None
        else:
            self._streak.append(now)
            if self._failing_since is None:
                self._failing_since = now
                self._failing_since_wall = self._clock.now()
        self._outcomes.append((now, ok))
        self._prune(limits, now)
        if self.state == SUSPENDED:
            return
        if (
            not ok
            and limits.suspend_after_s is not None
            and self._failing_since is not None
            and now - self._failing_since > limits.suspend_after_s
        ):
            self._enter(SUSPENDED)
            return
        if self.state == PROBING:
            if ok:
                self._enter(SENDING)
            else:
                self._open(limits, now, reason="probe failed")
            return
        if self.state == SENDING:
            reason = self._tripped(limits)
            if reason is not None:
                self._open(limits, now, reason=reason)

    def describe(self, limits: DeliveryLimits | None) -> dict[str, object]:
        """The governor for ``GET /_sandbox/state``: state, since when, what it counted."""
        reopens_at = None
        if self._reopens_at is not None and limits is not None and self.state == limits.open_state:
            delta = timedelta(seconds=max(0.0, self._reopens_at - self._clock.monotonic()))
            reopens_at = (self._clock.now() + delta).isoformat()
        errors = sum(not ok for _, ok in self._outcomes)
        return {
            "enabled": limits is not None,
            "state": self.state,
            "since": self._since.isoformat(),
            "reopens_at": reopens_at,
            "trips": self.trips,
            "window": {"requests": len(self._outcomes), "errors": errors},
            "consecutive_errors": len(self._streak),
            "failing_since": None
            if self._failing_since_wall is None
            else self._failing_since_wall.isoformat(),
            "limits": None if limits is None else asdict(limits),
        }

    # -- internals -----------------------------------------------------------------------

    def _prune(self, limits: DeliveryLimits, now: float) -> None:
        horizon = now - limits.window_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
        while self._streak and self._streak[0] < horizon:
            self._streak.popleft()

    def _tripped(self, limits: DeliveryLimits) -> str | None:
        requests = len(self._outcomes)
        errors = sum(not ok for _, ok in self._outcomes)
        if limits.max_errors is not None and errors > limits.max_errors:
            return f"errors={errors}>{limits.max_errors}"
        if (
            limits.max_error_rate is not None
            and requests >= limits.min_requests
            and errors / requests >= limits.max_error_rate
        ):
            return f"error_rate={errors}/{requests}>={limits.max_error_rate}"
        if (
            limits.max_consecutive_errors is not None
            and len(self._streak) > limits.max_consecutive_errors
        ):
            return f"consecutive_errors={len(self._streak)}>{limits.max_consecutive_errors}"
        return None

    def _open(self, limits: DeliveryLimits, now: float, *, reason: str) -> None:
        self.trips += 1
        self._reopens_at = now + limits.open_s
        # A new period counts afresh (the pause "starts sending as normal again"); the
        # unbroken run of errors that leads to suspension is kept.
        self._outcomes.clear()
        self._streak.clear()
        self._enter(limits.open_state)
        logger.warning(
            "webhook delivery limit tripped state=%s reason=%s open_s=%s trips=%s",
            limits.open_state,
            reason,
            limits.open_s,
            self.trips,
        )

    def _enter(self, state: str) -> None:
        if state == self.state:
            return
        if state == SENDING:
            self._outcomes.clear()
            self._streak.clear()
        if state == SUSPENDED:
            logger.warning(
                "webhook subscription suspended: errors since %s; nothing is sent until resumed",
                self._failing_since_wall,
            )
        self.state = state
        self._since = self._clock.now()
