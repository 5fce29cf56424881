"""The HTTP core every platform client is built on.

A platform client supplies three small functions and gets budgeted, classified calls:

- ``classify(response)``: raise ``RateLimitedError`` / ``RetriableAPIError`` /
  ``FatalAPIError`` for a failed response (the platform's one response classifier);
- ``rate_headers(response)``: what the response says about the budget;
- messages go through ``redact``, which strips bearer tokens, basic credentials, API keys and
  email addresses, so an error can be logged, audited and dead-lettered as it is.

Connectors build their ``httpx.AsyncClient`` with ``platform_http``: httpx's API over
aiohttp's wire (``connectors.base.aiohttp_transport``), about a quarter of httpx's own CPU per
call (``bench/http_client.py``). Tests may inject any httpx client; the classification below
holds for both transports.

Transport failures become ``RetriableAPIError``: no httpx exception leaves ``connectors/``.
They come in two kinds, and the difference matters for every write that is not idempotent:

    before the request left     ConnectError, ConnectTimeout,    RetriableAPIError: nothing
                                PoolTimeout, UnsupportedProtocol was sent, a retry is safe
    after it may have left      ReadTimeout, WriteTimeout,       AmbiguousAPIError: the
                                ReadError, WriteError,           platform may have applied it
                                RemoteProtocolError (reset,      and the answer was lost; the
                                closed without an answer), ...   retry must check first

A 5xx answer to a write is just as ambiguous (a gateway gives up while the backend carries on):
the classifiers raise ``RetriableAPIError`` for it, and a sink treats every retriable failure
of a non-idempotent write as "may have landed" (see ``connectors.base.sink``). Retrying is
``connectors.base.retry``'s job, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

import httpx

from connectors.base.aiohttp_transport import AiohttpTransport
from connectors.base.ratelimit import RateBudget, RateHeaders
from schemas.errors import RateLimitedError, RetriableAPIError

__all__ = [
    "AmbiguousAPIError",
    "ApiClient",
    "CallCount",
    "Classifier",
    "counting",
    "current_count",
    "platform_http",
    "redact",
    "retry_after_seconds",
]

Classifier = Callable[[httpx.Response], None]


class AmbiguousAPIError(RetriableAPIError):
    """The request may have reached the platform and no answer came back (a timeout while
    waiting, a reset, a connection closed mid-answer): it may have been applied. Retriable,
    but a write that is not idempotent checks what landed before it writes again."""


#: Failures that leave no doubt: the request never left this process.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

_REDACTIONS = (
    (re.compile(r"(?i)(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <redacted>"),
    (
        re.compile(r"(?i)(api[_-]?key|token|secret|password)([\"'=:\s]+)[^\s\"'&,}]+"),
        r"\1\2<redacted>",
    ),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
)


def redact(text: str, limit: int = 500) -> str:
    """A message safe for logs, audit records and the dead-letter topic."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= limit else text[:limit] + "…"


def retry_after_seconds(response: httpx.Response, default: float = 1.0) -> float:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


@dataclass
class CallCount:
    """The calls one command made (every attempt, failed ones too) and the last status."""

    calls: int = 0
    last_status: int | None = None
    #: calls other than GET/HEAD the platform accepted: once one landed, a later refusal in
    #: the same command (a 429) no longer means "nothing was written" (a POST search counts
    #: too: erring that way costs the retry one read)
    writes: int = 0


_READS = frozenset({"GET", "HEAD"})

_COUNT: ContextVar[CallCount | None] = ContextVar("deskstream_api_calls", default=None)


@contextmanager
def counting() -> Iterator[CallCount]:
    """Count the calls made inside the block by this task only: a sink runs commands of
    several partitions at once, so ``ApiClient.calls`` (shared) would mix them up."""
    count = CallCount()
    token = _COUNT.set(count)
    try:
        yield count
    finally:
        _COUNT.reset(token)


def current_count() -> CallCount | None:
    """The count of the command this task is executing, if it is counting."""
    return _COUNT.get()


class _NoCookies(CookieJar):
    """Keeps no cookie. The platform APIs authenticate every call with a header; the cookies
    they set besides (load balancing, bot management) are not needed, and reading them from
    every answer was about 0.1 ms of a call's CPU (``bench/http_client.py``)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def platform_http(timeout: httpx.Timeout, *, base_url: str = "") -> httpx.AsyncClient:
    """The httpx client a connector calls its platform with (aiohttp underneath)."""
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout, transport=AiohttpTransport(), cookies=_NoCookies()
    )


class ApiClient:
    """Budgeted, classified HTTP calls on an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        platform: str,
        budget: RateBudget,
        classify: Classifier,
        rate_headers: Callable[[httpx.Response], RateHeaders],
    ) -> None:
        self._http = http
        self._platform = platform
        self._budget = budget
        self._classify = classify
        self._rate_headers = rate_headers
        self.calls = 0

    @property
    def budget(self) -> RateBudget:
        return self._budget

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        await self._budget.acquire()
        self.calls += 1
        count = _COUNT.get()
        if count is not None:
            count.calls += 1
        try:
            response = await self._http.request(method, url, **kwargs)
        except _NOT_SENT as exc:
            raise RetriableAPIError(
                f"{self._platform} {method} {_path(url)} was not sent ({type(exc).__name__}: "
                "the platform is unreachable); will retry"
            ) from exc
        except httpx.TransportError as exc:
            raise AmbiguousAPIError(
                f"{self._platform} {method} {_path(url)} got no answer ({_no_answer(exc)}); "
                "the platform may have applied it: will retry, checking first what landed"
            ) from exc
        if count is not None:
            count.last_status = response.status_code
        self._budget.observe(self._rate_headers(response))
        try:
            self._classify(response)
        except RateLimitedError as exc:
            self._budget.refused(exc.scope)
            if exc.scope == "account":  # a record's own limit leaves the others alone
                self._budget.exhausted_for(exc.retry_after)
            raise
        if count is not None and method.upper() not in _READS:
            count.writes += 1
        return response

    async def aclose(self) -> None:
        await self._http.aclose()


def _no_answer(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"{type(exc).__name__}: timed out waiting"
    return f"{type(exc).__name__}: connection lost"


def _path(url: str) -> str:
    # Query strings can carry emails (user search): keep them out of messages.
    return url.split("?", 1)[0]
