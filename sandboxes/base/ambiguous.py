"""Ambiguous writes: the platform applied the request and its answer was lost.

This is the hardest case a sink meets, and the one a plain 5xx or 429 never shows: the state
changed, yet the caller cannot know it. :class:`~sandboxes.base.faults.FaultInjector`
runs the real handler first (so the write lands, webhooks included) and then, for one write in
``ambiguous_write_rate``, loses the answer in one of three ways (:data:`AmbiguousMode`):

``5xx``      a gateway error in the platform's own body, as a load balancer answers when the
             backend finished after its deadline;
``reset``    the connection is aborted without a byte of the answer (the client sees "server
             disconnected without sending a response");
``timeout``  the answer is held ``ambiguous_delay_s`` (longer than the client's timeout), so the
             client gives up first. The wait ends early once the client has hung up: the answer
             can no longer arrive, and a held handler would only slow the sandbox's shutdown.

Only writes are ever ambiguous (:func:`is_write`: POST, PUT, PATCH, DELETE); a platform whose
reads travel as POST (search endpoints, long polls) narrows it with
:meth:`PlatformSandbox.is_write <sandboxes.base.server.PlatformSandbox.is_write>`.
A write the platform refused (any 4xx or 5xx of its own) is answered as is: nothing was
applied, so nothing is ambiguous.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal, Protocol

from aiohttp import web

__all__ = ["AMBIGUOUS_MODES", "WRITE_METHODS", "AmbiguousMode", "is_write", "lose_answer"]

logger = logging.getLogger(__name__)

AmbiguousMode = Literal["5xx", "reset", "timeout"]
AMBIGUOUS_MODES: tuple[AmbiguousMode, ...] = ("5xx", "reset", "timeout")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: how often a held answer looks whether its client is still there
_POLL_S = 0.02


class _Errors(Protocol):
    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse: ...


def is_write(request: web.Request) -> bool:
    """Whether the request may change state: the default for every platform."""
    return request.method in WRITE_METHODS


async def lose_answer(
    mode: AmbiguousMode,
    request: web.Request,
    answer: web.StreamResponse,
    *,
    errors: _Errors,
    status: int,
    code: str,
    delay_s: float,
) -> web.StreamResponse:
    """What the client gets instead of ``answer``, the real answer of an applied write."""
    if mode == "5xx":
        return errors.error_response(status, code, "An internal error occurred.")
    if mode == "reset":
        _abort(request)
        return answer  # aiohttp writes nothing to an aborted transport
    # timeout: real time, not the sandbox's clock: the client's timeout runs on real time.
    waited = 0.0
    while waited < delay_s and _connected(request):
        await asyncio.sleep(_POLL_S)
        waited += _POLL_S
    if _connected(request):
        logger.warning(
            "sandbox held an answer %.1f s and the client still waited; its timeout is longer "
            "than ambiguous_delay_s, so this write was not ambiguous for it path=%s",
            delay_s,
            request.path,
        )
    return answer


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
