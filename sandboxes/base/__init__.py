"""Offline, faithful platform sandboxes: the shared base every ``sandboxes.<platform>`` builds on.

Modules
    ``clock``      :class:`Clock`, :class:`SystemClock`, :class:`ManualClock` (tests move time).
    ``faults``     :class:`FaultProfile`, named profiles via :func:`load_profile`
                   (``none``, ``flaky``, ``outage``, ``chaos``), :class:`FaultInjector`.
    ``ratelimit``  :class:`FixedWindowLimiter` -> :class:`RateDecision`.
    ``webhooks``   :class:`WebhookDispatcher` (at-least-once delivery with the platform's
                   :class:`RetryPolicy` and the profile's webhook faults).
    ``server``     :class:`PlatformSandbox`, :class:`SandboxContext`, :func:`build_app`,
                   :func:`run_sandboxes`.
    ``registry``   platform name -> ``"module:Class"``, used by ``deskstream sandbox``.
    ``receiver``   :class:`LoopbackReceiver`, a real local webhook endpoint for tests and bench.

How a platform plugs in
    1. Create ``sandboxes/<platform>/`` with a subclass of :class:`PlatformSandbox`::

           class ExampleSandbox(PlatformSandbox):
               platform = "example"
               webhook_retry_policy = RetryPolicy(max_attempts=5, retry_statuses=None,
                                                  never_retry_statuses=frozenset({400, 401}))

               def routes(self) -> list[web.RouteDef]:      # or override setup(app)
                   return [web.get("/api/things/{id}", self.get_thing)]
               def middlewares(self) -> list[Middleware]:    # optional: auth, rate limits
                   return [self.auth_middleware]
               def reset(self) -> None: ...                  # POST /_sandbox/reset
               def snapshot(self) -> dict[str, Any]: ...     # GET /_sandbox/snapshot
               def error_response(self, status, code, message) -> web.StreamResponse: ...
               def rate_limited_response(self, retry_after) -> web.StreamResponse: ...

       The two error factories render the platform's real error bodies and headers; the
       fault middleware uses them, so injected 5xx, outages and 429 bursts look real.
    2. Read time only through ``self.context.clock`` and randomness only through
       ``self.context.rng`` (or ``context.derive_rng(label)``), so ``--seed`` makes runs
       repeatable and tests can use a :class:`ManualClock`.
    3. On every change, build the platform's notification, sign it, and call
       ``await self.context.webhooks.emit(body, headers)`` when ``context.webhooks`` is set.
       Pass ``render_attempt=`` if the payload counts its delivery attempts.
    4. Rate limits: hold a :class:`FixedWindowLimiter` on ``context.clock`` and render each
       :class:`RateDecision` as the platform's own headers and 429 body.
    5. Register it in ``registry.SANDBOXES`` (``"sandboxes.<platform>:Class"``).

    Build one with ``ExampleSandbox.create(seed=7, faults="flaky",
    webhook_target="http://127.0.0.1:8000/webhooks/{platform}")`` and serve it with
    ``async with run_sandboxes([sandbox]) as running: running.url("example")``, or mount
    ``build_app(sandbox)`` on an ``aiohttp.test_utils.TestServer``. Optional ``start()`` /
    ``stop()`` run on application startup and cleanup (gRPC servers, CDC fan-out).
"""

from __future__ import annotations

from sandboxes.base.clock import Clock, ManualClock, SystemClock
from sandboxes.base.faults import (
    PROFILES,
    ErrorFactory,
    FaultInjector,
    FaultProfile,
    load_profile,
)
from sandboxes.base.governor import DeliveryGovernor, DeliveryLimits
from sandboxes.base.ratelimit import FixedWindowLimiter, RateDecision
from sandboxes.base.receiver import Delivery, LoopbackReceiver
from sandboxes.base.server import (
    Middleware,
    PlatformSandbox,
    RunningSandboxes,
    SandboxContext,
    build_app,
    run_sandboxes,
)
from sandboxes.base.webhooks import (
    AttemptRenderer,
    RetryPolicy,
    WebhookCounters,
    WebhookDispatcher,
)

__all__ = [
    "PROFILES",
    "AttemptRenderer",
    "Clock",
    "Delivery",
    "DeliveryGovernor",
    "DeliveryLimits",
    "ErrorFactory",
    "FaultInjector",
    "FaultProfile",
    "FixedWindowLimiter",
    "LoopbackReceiver",
    "ManualClock",
    "Middleware",
    "PlatformSandbox",
    "RateDecision",
    "RetryPolicy",
    "RunningSandboxes",
    "SandboxContext",
    "SystemClock",
    "WebhookCounters",
    "WebhookDispatcher",
    "build_app",
    "load_profile",
    "run_sandboxes",
]
