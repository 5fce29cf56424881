"""Zendesk's error bodies, exactly as the API sends them.

Handlers raise :class:`ZendeskError`; the sandbox middleware renders it. Bodies follow the
shapes the real API answers with (``{"error", "description", "details"}`` for business
errors, ``{"error": "Couldn't authenticate you"}`` for bad credentials, OAuth's own
``invalid_token`` body, and the plain-text per-ticket update 429).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = [
    "TICKET_UPDATE_LIMIT_TEXT",
    "ZendeskError",
    "bad_request",
    "forbidden",
    "idempotency_mismatch",
    "invalid_token",
    "not_found",
    "parameter_missing",
    "rate_limited",
    "record_invalid",
    "render",
    "server_error",
    "ticket_update_limited",
    "unauthorized",
    "update_conflict",
]

#: The body of the per-user, per-ticket update 429 (text, not JSON), from Zendesk's docs.
TICKET_UPDATE_LIMIT_TEXT = (
    "Rate limit for ticket updates exceeded, please wait before updating this ticket again"
)


class ZendeskError(Exception):
    """An API error response: status, body and extra headers."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def render(error: ZendeskError) -> web.Response:
    """The response the real API would send for ``error``."""
    if isinstance(error.body, str):
        return web.Response(
            status=error.status,
            text=error.body,
            content_type="text/plain",
            headers=error.headers,
        )
    return web.Response(
        status=error.status,
        body=json.dumps(error.body).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=error.headers,
    )


def unauthorized() -> ZendeskError:
    return ZendeskError(
        401,
        {"error": "Couldn't authenticate you"},
        headers={"WWW-Authenticate": 'Basic realm="Web Password"'},
    )


def invalid_token() -> ZendeskError:
    return ZendeskError(
        401,
        {
            "error": "invalid_token",
            "error_description": "The access token provided is expired, revoked, malformed "
            "or invalid for other reasons.",
        },
        headers={"WWW-Authenticate": 'Bearer realm="Zendesk", error="invalid_token"'},
    )


def forbidden() -> ZendeskError:
    return ZendeskError(
        403,
        {
            "error": "Forbidden",
            "description": "You do not have access to this page. Please contact the account "
            "owner of this help desk for further help.",
        },
    )


def not_found() -> ZendeskError:
    return ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})


def record_invalid(
    field: str, description: str, error: str | None = "InvalidValue", **extra: Any
) -> ZendeskError:
    """422 with one validation detail under ``field`` (``base`` for record-level errors and
    custom fields, which also carry ``ticket_field_id`` and ``ticket_field_type``)."""
    detail: dict[str, Any] = {"description": description, "error": error, **extra}
    return ZendeskError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field: [detail]},
        },
    )


def update_conflict() -> ZendeskError:
    """409 for ``safe_update`` with a stale ``updated_stamp``."""
    return ZendeskError(
        409,
        {
            "error": "UpdateConflict",
            "description": "Safe Update prevented the update due to outdated ticket data. "
            "Please fetch the latest ticket data and try again.",
        },
    )


def bad_request(description: str) -> ZendeskError:
    return ZendeskError(400, {"error": "InvalidValue", "description": description})


def parameter_missing(name: str) -> ZendeskError:
    return ZendeskError(
        400, {"error": "ParameterMissing", "description": f"Parameter {name} is required"}
    )


def idempotency_mismatch() -> ZendeskError:
    return ZendeskError(
        400,
        {
            "error": "IdempotentRequestError",
            "description": "Request parameters don't match the given idempotency key",
        },
    )


def rate_limited(retry_after: int, headers: dict[str, str] | None = None) -> ZendeskError:
    return ZendeskError(
        429,
        {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        },
        headers={**(headers or {}), "Retry-After": str(retry_after)},
    )


def ticket_update_limited(retry_after: int) -> ZendeskError:
    return ZendeskError(429, TICKET_UPDATE_LIMIT_TEXT, headers={"Retry-After": str(retry_after)})


def server_error(status: int) -> ZendeskError:
    """5xx as Zendesk's edge answers them (used for injected faults and outages)."""
    if status == 503:
        return ZendeskError(
            503,
            {
                "error": "ServiceUnavailable",
                "description": "Zendesk is temporarily unavailable. Please try again later.",
            },
            headers={"Retry-After": "10"},
        )
    return ZendeskError(
        status,
        {"error": "InternalError", "description": "Something went wrong. Please try again."},
    )
