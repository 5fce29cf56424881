"""Fault injection: latency, 5xx, outages, 429 bursts, ambiguous writes (applied, then the
answer lost: see :mod:`sandboxes.base.ambiguous`), and the webhook faults the
dispatcher applies (redelivery, duplication, reordering, delay, the platform's own delivery
limits: breaker, pause, suspension, and webhooks switched off altogether) plus CDC gaps for
Salesforce.

A :class:`FaultProfile` is a plain value. Named profiles (``none``, ``flaky``, ``outage``,
``chaos``, ``ambiguous``, ``burst``, ``webhook_limits``, ``webhook_throttle``) come from
:func:`load_profile`. :class:`FaultInjector`
turns the HTTP part of a profile into an aiohttp middleware; the error bodies it returns come
from the platform (:class:`ErrorFactory`), so an injected 503 looks exactly like that
platform's own 503.

Faults that refuse a request (outage, 429, ``error_rate``) are decided before the handler runs
and leave the state alone; an ambiguous write is decided before and lost after it ran.

Outage windows are seconds relative to the moment the profile was applied (sandbox start or
the last ``PUT /_sandbox/faults``), read on the sandbox's clock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandboxes.base.ambiguous import (
    AMBIGUOUS_MODES,
    AmbiguousMode,
    lose_answer,
)
from sandboxes.base.ambiguous import (
    is_write as writes_by_method,
)
from sandboxes.base.clock import Clock

__all__ = [
    "ADMIN_PREFIX",
    "PERSON_HEADER",
    "PROFILES",
    "ErrorFactory",
    "FaultCounters",
    "FaultInjector",
    "FaultProfile",
    "load_profile",
]

logger = logging.getLogger(__name__)

#: Requests carrying this header come from the people a rehearsal plays (``PoliteTransport``):
#: their writes are never made ambiguous (every other fault applies to them).
PERSON_HEADER = "X-Sandbox-Person"

#: Requests under this prefix are the sandbox's own admin API: never faulted, never limited.
ADMIN_PREFIX = "/_sandbox"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Whether a request may change state (only those can be ambiguous).
WritePredicate = Callable[[web.Request], bool]

_SERVER_ERROR_CODES: dict[int, str] = {
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class FaultProfile(BaseModel):
    """What goes wrong, and how often. All zero (the default) means a well-behaved platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    latency_ms: float = Field(0.0, ge=0)
    latency_jitter_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    error_statuses: tuple[int, ...] = (500, 502, 503)
    outage_windows: tuple[tuple[float, float], ...] = ()
    burst_429_every: int = Field(0, ge=0)
    burst_429_length: int = Field(0, ge=0)
    burst_429_retry_after_s: float = Field(1.0, ge=0)
    webhook_redelivery_rate: float = Field(0.0, ge=0, le=1)
    webhook_duplicate_rate: float = Field(0.0, ge=0, le=1)
    webhook_reorder_window: int = Field(0, ge=0)
    webhook_delay_ms: float = Field(0.0, ge=0)
    #: the platform sends no webhook at all: an admin deactivated the webhook (Zendesk:
    #: status inactive) or paused the subscription (Intercom), or the endpoint was never
    #: registered. Every delivery that falls due is dropped (``dropped_by_state``:
    #: ``deactivated``), not queued, as a deactivated webhook's events are; switch it with
    #: ``PUT /_sandbox/faults`` mid-run to play webhooks going quiet
    webhooks_off: bool = False
    #: apply the platform's documented delivery limits (Zendesk circuit breaker, Intercom
    #: pause and suspension: :mod:`sandboxes.base.governor`); off, the platform
    #: never stops sending, which is kinder than any real one
    webhook_limits: bool = False
    #: multiply the limits' error counts (1000 errors -> 10 at 0.01), to trip them in a test
    webhook_limits_count_scale: float = Field(1.0, gt=0, le=1)
    #: multiply the limits' windows and periods (a 15 min pause -> 9 s at 0.01), for runs on
    #: a real clock
    webhook_limits_time_scale: float = Field(1.0, gt=0, le=1)
    cdc_gap_rate: float = Field(0.0, ge=0, le=1)
    #: share of transactions whose change events are never delivered (Salesforce keeps no
    #: promise that every change reaches a subscriber; the reconciliation is the net)
    cdc_drop_rate: float = Field(0.0, ge=0, le=1)
    #: share of writes applied and then answered with a lost answer (``ambiguous_modes``)
    ambiguous_write_rate: float = Field(0.0, ge=0, le=1)
    ambiguous_modes: tuple[AmbiguousMode, ...] = Field(AMBIGUOUS_MODES, min_length=1)
    #: how long a ``timeout`` holds the answer: longer than the clients' timeouts (30 s for
    #: Zendesk, 15 s for Intercom), or the client simply waits and nothing is ambiguous
    ambiguous_delay_s: float = Field(31.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FaultProfile:
        for start, end in self.outage_windows:
            if not 0 <= start < end:
                raise ValueError(f"outage window ({start}, {end}) must satisfy 0 <= start < end")
        for status in self.error_statuses:
            if not 500 <= status <= 599:
                raise ValueError(f"error_statuses must be 5xx, got {status}")
        if self.burst_429_length and not self.burst_429_every:
            raise ValueError("burst_429_length needs burst_429_every")
        return self

    def in_outage(self, elapsed_s: float) -> bool:
        """Whether ``elapsed_s`` seconds after the profile was applied falls in an outage."""
        return any(start <= elapsed_s < end for start, end in self.outage_windows)


PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(name="none"),
    # A normal bad day: a little latency, the odd 5xx and 429 burst, some webhook noise.
    "flaky": FaultProfile(
        name="flaky",
        latency_ms=20,
        latency_jitter_ms=30,
        error_rate=0.02,
        burst_429_every=200,
        burst_429_length=5,
        webhook_redelivery_rate=0.02,
        webhook_duplicate_rate=0.02,
        webhook_reorder_window=4,
        webhook_delay_ms=50,
        cdc_gap_rate=0.001,
    ),
    # The platform is down for a minute, 30 s after start; otherwise healthy.
    "outage": FaultProfile(name="outage", outage_windows=((30.0, 90.0),)),
    # Only ambiguous writes: one write in five lands and its answer is lost.
    "ambiguous": FaultProfile(name="ambiguous", ambiguous_write_rate=0.2),
    # A busy hour: 429 bursts, jittery latency, webhook noise, and one write in twenty
    # ambiguous (a run of ~30 conversations, a few hundred writes, sees several).
    "burst": FaultProfile(
        name="burst",
        latency_ms=5,
        latency_jitter_ms=30,
        burst_429_every=40,
        burst_429_length=5,
        burst_429_retry_after_s=1.0,
        webhook_redelivery_rate=0.2,
        webhook_duplicate_rate=0.2,
        webhook_reorder_window=8,
        webhook_delay_ms=20,
        ambiguous_write_rate=0.05,
    ),
    # The platforms' documented webhook delivery limits at full size: a Zendesk webhook's
    # breaker opens at > 1000 errors (or 70 %) in 5 min, Intercom pauses after > 1000
    # consecutive errors and suspends after 7 days of them. Move a manual clock to see days.
    "webhook_limits": FaultProfile(name="webhook_limits", webhook_limits=True),
    # The same limits tripped by a dozen failures (counts x 0.01), on the documented clock.
    "webhook_throttle": FaultProfile(
        name="webhook_throttle", webhook_limits=True, webhook_limits_count_scale=0.01
    ),
    # Everything at once, hard enough to shake out lost or duplicated writes.
    "chaos": FaultProfile(
        name="chaos",
        latency_ms=50,
        latency_jitter_ms=100,
        error_rate=0.1,
        outage_windows=((60.0, 75.0), (180.0, 210.0)),
        burst_429_every=50,
        burst_429_length=10,
        webhook_redelivery_rate=0.1,
        webhook_duplicate_rate=0.1,
        webhook_reorder_window=16,
        webhook_delay_ms=200,
        cdc_gap_rate=0.01,
    ),
}


def load_profile(name: str) -> FaultProfile:
    """The named profile; ``ValueError`` listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown fault profile {name!r}; choose one of {known}") from None


class ErrorFactory(Protocol):
    """The platform's own error bodies, so injected failures look like the real thing."""

    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse: ...

    def rate_limited_response(self, retry_after: float) -> web.StreamResponse: ...


@dataclass
class FaultCounters:
    """How many requests each fault touched (exposed by ``GET /_sandbox/state``)."""

    requests: int = 0
    delayed: int = 0
    errors: int = 0
    outages: int = 0
    bursts_429: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    #: writes applied whose answer was lost, by mode (``5xx``, ``reset``, ``timeout``)
    ambiguous: dict[str, int] = field(default_factory=dict)

    @property
    def ambiguous_writes(self) -> int:
        return sum(self.ambiguous.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "delayed": self.delayed,
            "errors": self.errors,
            "outages": self.outages,
            "bursts_429": self.bursts_429,
            "injected_by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "ambiguous_writes": self.ambiguous_writes,
            "ambiguous_by_mode": dict(sorted(self.ambiguous.items())),
        }


class FaultInjector:
    """Applies a profile's HTTP faults to every non-admin request, deterministically per seed."""

    def __init__(
        self,
        profile: FaultProfile,
        *,
        errors: ErrorFactory,
        rng: random.Random,
        clock: Clock,
        is_write: WritePredicate | None = None,
        ambiguous_rng: random.Random | None = None,
    ) -> None:
        self._errors = errors
        self._rng = rng
        # Its own generator, so turning ambiguous writes on leaves the other faults' draws
        # (and the tests pinned on them) as they were.
        self._ambiguous_rng = ambiguous_rng or rng
        self._is_write = is_write or writes_by_method
        self._clock = clock
        self.counters = FaultCounters()
        self.profile = profile
        self._epoch = clock.monotonic()
        self._seen = 0  # requests seen under the current profile, drives the 429 bursts

    def apply(self, profile: FaultProfile) -> None:
        """Switch profiles; outage windows and burst cycles restart from now."""
        self.profile = profile
        self._epoch = self._clock.monotonic()
        self._seen = 0
        logger.info("sandbox faults applied profile=%s", profile.name)

    def reset_counters(self) -> None:
        self.counters = FaultCounters()

    def _count(self, status: int) -> None:
        self.counters.by_status[status] = self.counters.by_status.get(status, 0) + 1

    async def inject(self, request: web.Request) -> web.StreamResponse | None:
        """The faulty response to send instead of the real one, or None to serve normally."""
        profile = self.profile
        self.counters.requests += 1
        position = self._seen
        self._seen += 1
        if profile.latency_ms or profile.latency_jitter_ms:
            delay_ms = profile.latency_ms + self._rng.uniform(0, profile.latency_jitter_ms)
            self.counters.delayed += 1
            await self._clock.sleep(delay_ms / 1000)
        if profile.in_outage(self._clock.monotonic() - self._epoch):
            self.counters.outages += 1
            self._count(503)
            return self._errors.error_response(
                503, "service_unavailable", "Service unavailable; please try again later."
            )
        every, length = profile.burst_429_every, profile.burst_429_length
        if every and length and position % (every + length) >= every:
            self.counters.bursts_429 += 1
            self._count(429)
            return self._errors.rate_limited_response(profile.burst_429_retry_after_s)
        if profile.error_rate and self._rng.random() < profile.error_rate:
            status = self._rng.choice(profile.error_statuses)
            self.counters.errors += 1
            self._count(status)
            code = _SERVER_ERROR_CODES.get(status, "server_error")
            return self._errors.error_response(status, code, "An internal error occurred.")
        return None

    def _ambiguous_mode(self, request: web.Request) -> AmbiguousMode | None:
        """The way this write's answer is lost, or None; drawn only for writes, so reads
        never shift the sequence of a seed."""
        profile = self.profile
        if not profile.ambiguous_write_rate or not self._is_write(request):
            return None
        if request.headers.get(PERSON_HEADER):
            # A person whose click got no answer looks before trying again; the polite
            # transport that plays people would write twice instead, and the duplicate would
            # be theirs, not the integration's under test.
            return None
        if self._ambiguous_rng.random() >= profile.ambiguous_write_rate:
            return None
        return self._ambiguous_rng.choice(profile.ambiguous_modes)

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        injected = await self.inject(request)
        if injected is not None:
            logger.debug("sandbox fault injected path=%s status=%s", request.path, injected.status)
            return injected
        mode = self._ambiguous_mode(request)
        answer = await handler(request)
        if mode is None or answer.status >= 400 or answer.prepared:
            # Refused by the platform itself: nothing applied, nothing ambiguous. (A streamed
            # answer has left already and cannot be lost any more.)
            return answer
        profile = self.profile
        status = self._ambiguous_rng.choice(profile.error_statuses) if mode == "5xx" else 0
        self.counters.ambiguous[mode] = self.counters.ambiguous.get(mode, 0) + 1
        if status:
            self._count(status)
        logger.info(
            "sandbox ambiguous write method=%s path=%s applied=%s lost_by=%s",
            request.method,
            request.path,
            answer.status,
            mode,
        )
        return await lose_answer(
            mode,
            request,
            answer,
            errors=self._errors,
            status=status,
            code=_SERVER_ERROR_CODES.get(status, "server_error"),
            delay_s=profile.ambiguous_delay_s,
        )
