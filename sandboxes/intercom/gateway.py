"""What every Intercom API request passes first: Bearer auth, the ``Intercom-Version``
header, the per-app rate limit and the translation of errors into ``error.list`` bodies.

Rate limits are counted per access token (one token = one app) in fixed 10-second windows.
Every answer to an authenticated request carries ``X-RateLimit-Limit`` (the window's budget),
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time the window ends); a refused
request gets 429 ``rate_limit_exceeded`` "Exceeded rate limit of N in 10_seconds"; requests
without valid credentials get none of these headers and spend nothing. Source: "Rate
Limiting", https://developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting
(no ``Retry-After`` is documented, so none is sent: the client waits for the reset).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from sandboxes.base.faults import ADMIN_PREFIX
from sandboxes.base.ratelimit import FixedWindowLimiter, RateDecision
from sandboxes.intercom.config import IntercomSandboxConfig
from sandboxes.intercom.errors import IntercomAPIError, error_list, new_request_id

__all__ = ["SUPPORTED_VERSIONS", "Gateway", "rate_headers"]

logger = logging.getLogger(__name__)

#: The ``intercom_version`` enum of the 2.14 spec, plus the rolling ``Unstable`` version.
SUPPORTED_VERSIONS = frozenset(
    ["1.0", "1.1", "1.2", "1.3", "1.4"] + [f"2.{minor}" for minor in range(15)] + ["Unstable"]
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(int(decision.reset_at)),
    }


class Gateway:
    """Auth, versioning, rate limiting and error rendering as one aiohttp middleware."""

    def __init__(
        self, config: IntercomSandboxConfig, limiter: FixedWindowLimiter, rng: random.Random
    ) -> None:
        self.config = config
        self.limiter = limiter
        self._rng = rng
        self._tokens = frozenset(config.access_tokens)
        self.rejected = {"unauthorized": 0, "rate_limited": 0, "bad_version": 0}

    def request_id(self) -> str:
        return new_request_id(self._rng)

    def _token(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self._tokens:
            return None
        return token.strip()

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        request_id = self.request_id()
        token = self._token(request)
        if token is None:
            self.rejected["unauthorized"] += 1
            return error_list(401, "unauthorized", "Access Token Invalid", request_id=request_id)
        version = request.headers.get("Intercom-Version")
        if version is not None and version not in SUPPORTED_VERSIONS:
            # Code and wording of this refusal are UNVERIFIED; the status is a client error.
            self.rejected["bad_version"] += 1
            return error_list(
                400,
                "intercom_version_invalid",
                "The requested version could not be found",
                request_id=request_id,
            )
        decision = self.limiter.hit(token)
        headers = rate_headers(decision)
        if not decision.allowed:
            self.rejected["rate_limited"] += 1
            logger.debug("intercom sandbox rate limited remaining=0 reset=%d", decision.reset_at)
            return self._limited(decision, request_id, headers)
        try:
            response = await handler(request)
        except IntercomAPIError as exc:
            response = error_list(
                exc.status, exc.code, exc.message, request_id=request_id, field=exc.field
            )
        except web.HTTPNotFound:
            response = error_list(404, "not_found", "Resource Not Found", request_id=request_id)
        except web.HTTPMethodNotAllowed:
            response = error_list(
                405, "method_not_allowed", "Method Not Allowed", request_id=request_id
            )
        except Exception:
            # A sandbox bug must still look like the platform's own 500 to the client.
            logger.exception("intercom sandbox handler failed path=%s", request.path)
            response = error_list(
                500, "server_error", "An internal error occurred.", request_id=request_id
            )
        response.headers.update(headers)
        return response

    def _limited(
        self, decision: RateDecision, request_id: str, headers: dict[str, str]
    ) -> web.Response:
        window = f"{int(self.config.rate_limit_window_s)}_seconds"
        return error_list(
            429,
            "rate_limit_exceeded",
            f"Exceeded rate limit of {decision.limit} in {window}",
            request_id=request_id,
            headers=headers,
        )

    def limited_response(self, retry_after: float, reset_at: float) -> web.Response:
        """A 429 for an injected burst: the window looks spent until ``reset_at``."""
        decision = RateDecision(False, self.limiter.limit, 0, reset_at, max(1, int(retry_after)))
        return self._limited(decision, self.request_id(), rate_headers(decision))
