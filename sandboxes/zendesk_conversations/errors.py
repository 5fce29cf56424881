"""Sunshine Conversations error bodies: ``{"errors": [{"code": ..., "title": ...}]}``.

Handlers raise :class:`SunshineAPIError`; the HTTP layer renders it. Codes and titles that
the official spec shows are used verbatim (``conflict``/"User already exists",
``conversation_not_found``/"Conversation not found", ``locked``/"Message limit of 30000 per
conversation reached." ...); validation titles the spec does not list are worded by us.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from sandboxes.zendesk_conversations.model import Event

__all__ = [
    "SunshineAPIError",
    "SwitchboardActionFailed",
    "bad_request",
    "error_body",
    "error_response",
    "rate_limited_response",
]


class SunshineAPIError(Exception):
    """An API call the platform refuses; rendered as its error body with ``status``."""

    def __init__(self, status: int, code: str, title: str) -> None:
        super().__init__(f"{status} {code}: {title}")
        self.status = status
        self.code = code
        self.title = title


class SwitchboardActionFailed(SunshineAPIError):
    """A switchboard action that was attempted and failed; ``failure`` is the
    ``switchboard:<action>:failure`` event announcing it (published before the answer)."""

    def __init__(self, status: int, code: str, title: str, failure: Event) -> None:
        super().__init__(status, code, title)
        self.failure = failure


def bad_request(title: str) -> SunshineAPIError:
    """The 400 every body validation failure answers with."""
    return SunshineAPIError(400, "bad_request", title)


def error_body(code: str, title: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "title": title}]}


def error_response(status: int, code: str, title: str) -> web.Response:
    return web.json_response(error_body(code, title), status=status)


def rate_limited_response(retry_after: float, *, send_retry_after: bool = False) -> web.Response:
    """A 429. Sunshine documents no ``Retry-After`` (clients back off exponentially with
    jitter), so the header is only sent when the sandbox is configured to."""
    response = error_response(429, "too_many_requests", "Rate limit exceeded")
    if send_retry_after:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response
