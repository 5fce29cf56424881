"""The sandbox server: one :class:`PlatformSandbox` per platform, each on its own port.

:func:`build_app` mounts a platform's routes behind the fault middleware, next to the admin
API every sandbox shares:

* ``POST /_sandbox/reset``    forget all state (and counters);
* ``GET  /_sandbox/snapshot`` the platform's state as JSON;
* ``GET  /_sandbox/state``    counters: requests, injected faults, webhook deliveries (and
  ``webhooks.governor``: the platform's breaker/pause/suspension state; what it dropped is
  ``webhooks.dropped_by_platform`` and ``webhooks.dropped_by_state``);
* ``POST /_sandbox/webhooks/resume`` close the breaker / end a pause / lift a suspension, as
  an admin re-activating the webhook (Intercom: "Set live") does;
* ``PUT  /_sandbox/faults``   apply ``{"profile": "flaky"}`` or a full :class:`FaultProfile`
  (ambiguous writes included: :mod:`sandboxes.base.ambiguous`);
* ``POST /_sandbox/clock``    ``{"advance_s": N}`` moves a :class:`ManualClock` forward.

:func:`run_sandboxes` serves several sandboxes on loopback ports (0 picks a free one) and
fills in each context's ``base_url`` before the first request can arrive.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import random
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from aiohttp import web
from aiohttp.typedefs import Middleware as _Middleware
from pydantic import ValidationError

from connectors.base.settings import ConnectorSettings
from sandboxes.base.ambiguous import is_write
from sandboxes.base.clock import Clock, ManualClock, SystemClock
from sandboxes.base.faults import (
    ADMIN_PREFIX,
    FaultInjector,
    FaultProfile,
    load_profile,
)
from sandboxes.base.webhooks import RetryPolicy, WebhookDispatcher

__all__ = [
    "INJECTOR_KEY",
    "SANDBOX_KEY",
    "Middleware",
    "PlatformSandbox",
    "RunningSandboxes",
    "SandboxContext",
    "build_app",
    "run_sandboxes",
]

logger = logging.getLogger(__name__)

#: An aiohttp middleware, as ``@web.middleware`` functions and bound methods type.
Middleware = _Middleware


@dataclass
class SandboxContext:
    """Everything a platform sandbox gets from outside: time, randomness, faults, webhooks."""

    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311
    faults: FaultProfile = field(default_factory=lambda: load_profile("none"))
    webhooks: WebhookDispatcher | None = None
    base_url: str = ""
    seed: int = 0

    def derive_rng(self, label: str) -> random.Random:
        """An independent generator for one concern, so e.g. fault decisions do not shift
        when a handler draws one more id. String seeds are stable across runs."""
        return random.Random(f"{self.seed}:{label}")  # noqa: S311 - simulation, not crypto

    def set_faults(self, profile: FaultProfile) -> None:
        """Apply ``profile`` to this context and its webhook dispatcher."""
        self.faults = profile
        if self.webhooks is not None:
            self.webhooks.faults = profile


class PlatformSandbox(abc.ABC):
    """One emulated platform. Subclasses set ``platform`` and ``webhook_retry_policy`` and
    implement ``routes`` (or ``setup``), ``reset``, ``snapshot`` and the two error factories.
    """

    platform: ClassVar[str]
    #: How this platform retries webhook deliveries (used by :meth:`create`).
    webhook_retry_policy: ClassVar[RetryPolicy] = RetryPolicy()

    def __init__(self, *, context: SandboxContext) -> None:
        self.context = context

    @classmethod
    def create(
        cls,
        *,
        seed: int = 0,
        faults: FaultProfile | str = "none",
        webhook_target: str | None = None,
        clock: Clock | None = None,
        base_url: str = "",
        webhook_concurrency: int = 1,
        **options: Any,
    ) -> Self:
        """Build the sandbox with a fresh context; ``{platform}`` in ``webhook_target`` is
        replaced by this platform's name (``http://127.0.0.1:8000/webhooks/{platform}``).
        ``options`` go to the platform's constructor (``config=...`` for its account)."""
        profile = load_profile(faults) if isinstance(faults, str) else faults
        clock = clock or SystemClock()
        context = SandboxContext(
            clock=clock,
            rng=random.Random(f"{seed}:{cls.platform}"),  # noqa: S311
            faults=profile,
            base_url=base_url,
            seed=seed,
        )
        if webhook_target:
            context.webhooks = WebhookDispatcher(
                webhook_target.replace("{platform}", cls.platform),
                faults=profile,
                rng=context.derive_rng("webhooks"),
                clock=clock,
                retry_policy=cls.webhook_retry_policy,
                concurrency=webhook_concurrency,
            )
        return cls(context=context, **options)

    # -- what a platform provides ----------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The platform's API routes. Override this or :meth:`setup`."""
        return []

    def setup(self, app: web.Application) -> None:
        """Mount the platform on ``app``; the default adds :meth:`routes`."""
        app.add_routes(self.routes())

    def middlewares(self) -> list[Middleware]:
        """Platform middlewares (auth, rate limits), run inside the fault middleware."""
        return []

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all state, as if freshly started."""

    @abc.abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state for ``GET /_sandbox/snapshot``."""

    @abc.abstractmethod
    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse:
        """This platform's error body for ``status`` (used for injected 5xx and outages)."""

    @abc.abstractmethod
    def rate_limited_response(self, retry_after: float) -> web.StreamResponse:
        """This platform's 429, with its own headers (used for injected 429 bursts)."""

    def is_write(self, request: web.Request) -> bool:
        """Whether ``request`` may change state: only those can be ambiguous writes. Every
        POST, PUT, PATCH and DELETE by default; a platform whose reads travel as POST
        (searches, long polls, token exchanges) leaves them out."""
        return is_write(request)

    def counters(self) -> dict[str, Any]:
        """Extra platform counters for ``GET /_sandbox/state``."""
        return {}

    async def flush_webhooks(self) -> None:
        """Hand every notification the platform holds back (to batch them) to the dispatcher
        now; platforms that send each notification at once hold nothing."""
        return None

    def describe(self) -> dict[str, str]:
        """Details of the emulated account that ``deskstream sandbox`` prints beside its URL
        (ids, and credentials a worker has no setting for); what :meth:`worker_connector`
        holds is printed with it, so it is left out here (a secret is printed once)."""
        return {}

    def worker_connector(self) -> ConnectorSettings | None:
        """The settings of a worker's connector for this account (webhook signing secret,
        API URL and credentials, Deskstream's own actor there), valid once serving
        (``context.base_url`` set); None where a worker has nothing to connect to.
        ``deskstream sandbox`` prints them as ``DESKSTREAM_CONNECTORS__<platform>__*``."""
        return None

    async def start(self) -> None:
        """Start background work (CDC fan-out, a gRPC server ...). Called on app startup."""
        return None

    async def stop(self) -> None:
        """Stop background work. Called on app cleanup."""
        return None


SANDBOX_KEY: web.AppKey[PlatformSandbox] = web.AppKey("deskstream_sandbox", PlatformSandbox)
INJECTOR_KEY: web.AppKey[FaultInjector] = web.AppKey("deskstream_faults", FaultInjector)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, default=str))


class _Admin:
    """The ``/_sandbox`` endpoints shared by every platform."""

    def __init__(self, sandbox: PlatformSandbox, injector: FaultInjector) -> None:
        self.sandbox = sandbox
        self.injector = injector
        self.started = sandbox.context.clock.monotonic()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{ADMIN_PREFIX}/reset", self.reset),
            web.get(f"{ADMIN_PREFIX}/snapshot", self.snapshot),
            web.get(f"{ADMIN_PREFIX}/state", self.state),
            web.put(f"{ADMIN_PREFIX}/faults", self.faults),
            web.get(f"{ADMIN_PREFIX}/faults", self.get_faults),
            web.post(f"{ADMIN_PREFIX}/clock", self.clock),
            web.post(f"{ADMIN_PREFIX}/webhooks/resume", self.resume_webhooks),
        ]

    async def reset(self, request: web.Request) -> web.Response:
        self.sandbox.reset()
        self.injector.reset_counters()
        if self.sandbox.context.webhooks is not None:
            self.sandbox.context.webhooks.reset_counters()
            self.sandbox.context.webhooks.governor.reset()
        logger.info("sandbox reset platform=%s", self.sandbox.platform)
        return _json({"reset": True, "platform": self.sandbox.platform})

    async def snapshot(self, request: web.Request) -> web.Response:
        return _json(self.sandbox.snapshot())

    async def state(self, request: web.Request) -> web.Response:
        context = self.sandbox.context
        hooks = context.webhooks
        return _json(
            {
                "platform": self.sandbox.platform,
                "base_url": context.base_url,
                "now": context.clock.now().isoformat(),
                "uptime_s": round(context.clock.monotonic() - self.started, 3),
                "faults": {"profile": context.faults.model_dump(mode="json")}
                | self.injector.counters.as_dict(),
                "webhooks": None
                if hooks is None
                else {"target": hooks.target_url, "pending": hooks.pending}
                | hooks.counters.as_dict()
                | {"governor": hooks.governor.describe(hooks.limits)},
                "platform_counters": self.sandbox.counters(),
            }
        )

    async def resume_webhooks(self, request: web.Request) -> web.Response:
        hooks = self.sandbox.context.webhooks
        if hooks is None:
            return _json({"error": "no_webhooks", "message": "no webhook target"}, status=409)
        hooks.governor.resume()
        return _json(hooks.governor.describe(hooks.limits))

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.sandbox.context.faults.model_dump(mode="json"))

    async def faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("expected a JSON object")
            if set(body) == {"profile"}:
                profile = load_profile(str(body["profile"]))
            else:
                profile = FaultProfile.model_validate(body)
        except (ValueError, TypeError, ValidationError) as exc:
            return _json({"error": "invalid_fault_profile", "message": str(exc)}, status=400)
        self.sandbox.context.set_faults(profile)
        self.injector.apply(profile)
        return _json(profile.model_dump(mode="json"))

    async def clock(self, request: web.Request) -> web.Response:
        clock = self.sandbox.context.clock
        if not isinstance(clock, ManualClock):
            return _json({"error": "clock_not_manual", "message": "real clock"}, status=409)
        try:
            advance = float((await request.json())["advance_s"])
            clock.advance(advance)
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": "invalid_clock_request", "message": str(exc)}, status=400)
        return _json({"now": clock.now().isoformat()})


def build_app(sandbox: PlatformSandbox) -> web.Application:
    """An aiohttp application serving ``sandbox`` with faults and the admin API."""
    context = sandbox.context
    injector = FaultInjector(
        context.faults,
        errors=sandbox,
        rng=context.derive_rng("faults"),
        clock=context.clock,
        is_write=sandbox.is_write,
        ambiguous_rng=context.derive_rng("ambiguous"),
    )
    app = web.Application(middlewares=[injector.middleware, *sandbox.middlewares()])
    app[SANDBOX_KEY] = sandbox
    app[INJECTOR_KEY] = injector
    app.add_routes(_Admin(sandbox, injector).routes())
    sandbox.setup(app)

    async def on_startup(_: web.Application) -> None:
        if context.webhooks is not None:
            await context.webhooks.start()
        await sandbox.start()

    async def on_cleanup(_: web.Application) -> None:
        await sandbox.stop()
        if context.webhooks is not None:
            await context.webhooks.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


@dataclass
class RunningSandboxes:
    """Sandboxes being served: their URLs, ports and instances, by platform name."""

    sandboxes: dict[str, PlatformSandbox]
    ports: dict[str, int]
    host: str

    def url(self, platform: str) -> str:
        return f"http://{_url_host(self.host)}:{self.ports[platform]}"

    def sandbox(self, platform: str) -> PlatformSandbox:
        return self.sandboxes[platform]

    async def drain_webhooks(self) -> None:
        """Send what each sandbox holds back, then wait for every pending webhook delivery."""
        await asyncio.gather(*(s.flush_webhooks() for s in self.sandboxes.values()))
        await asyncio.gather(
            *(s.context.webhooks.drain() for s in self.sandboxes.values() if s.context.webhooks)
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def run_sandboxes(
    sandboxes: Sequence[PlatformSandbox],
    *,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
) -> AsyncIterator[RunningSandboxes]:
    """Serve each sandbox on its own port (``ports[platform]``, default 0 = a free one)."""
    ports = dict(ports or {})
    by_name: dict[str, PlatformSandbox] = {}
    for sandbox in sandboxes:
        if sandbox.platform in by_name:
            raise ValueError(f"platform {sandbox.platform!r} given twice")
        by_name[sandbox.platform] = sandbox
    runners: list[web.AppRunner] = []
    bound: dict[str, int] = {}
    try:
        for name, sandbox in by_name.items():
            # Bind first so base_url is known (port 0 included) before any request arrives.
            sock = _bind(host, ports.get(name, 0))
            bound[name] = int(sock.getsockname()[1])
            sandbox.context.base_url = f"http://{_url_host(host)}:{bound[name]}"
            try:
                runner = web.AppRunner(build_app(sandbox), access_log=None)
                runners.append(runner)
                await runner.setup()
                await web.SockSite(runner, sock).start()
            except BaseException:
                sock.close()
                raise
            logger.info("sandbox serving platform=%s url=%s", name, sandbox.context.base_url)
        yield RunningSandboxes(sandboxes=by_name, ports=bound, host=host)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
