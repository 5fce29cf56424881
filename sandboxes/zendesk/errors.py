"""Zendesk's error bodies, as the API sends them.

Handlers raise :class:`ZendeskError`; the sandbox middleware renders it. Sources, per shape:

* ``{"error", "description"}`` for business errors: the spec prints
  ``{"error":"RecordNotFound","description":"Not found"}`` for a 404
  (``zendesk-support-openapi.yaml``, ``ShowUserComplianceDeletionStatuses``) and a 409 for a
  ``safe_update`` with an outdated ``updated_stamp`` (``UpdateTicket``, "Protecting against
  ticket update collisions"). "Request format" / "Response format",
  https://developer.zendesk.com/api-reference/introduction/requests, warns that an error
  "like a bad request" may come back as ``text/plain``: the client reads non-JSON error
  bodies (``connectors/zendesk/client.py``, ``_error_body``). The 422 ``RecordInvalid``
  ``details`` map, the 409's ``UpdateConflict`` code and the wording of 400
  ``InvalidValue``/``ParameterMissing``, 401 and 403 are UNVERIFIED (no official page in
  reach prints them; searched "Zendesk API introduction response format HTTP status codes
  error RecordInvalid details description 422 400 JSON"); the client keys only on the
  status and on the codes in its table, and reads ``details`` best effort.
* 429 with ``Retry-After`` (seconds) for every limit: "Rate limits",
  https://developer.zendesk.com/api-reference/introduction/rate-limits. The body of the
  account-wide 429 is described only as "a body that details the reason" (the older
  "Usage limits" page, https://developer.zendesk.com/rest_api/docs/support/usage_limits);
  its JSON shape here is UNVERIFIED and the client never reads it.
* The per-user, per-ticket update 429 is the text body ``Rate limit for ticket updates
  exceeded, please wait before updating this ticket again`` sent as ``text/html;
  charset=utf-8`` with ``Retry-After``: the example response in "Best practices for avoiding
  rate limiting",
  https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/best-practices-for-avoiding-rate-limiting/
* 400 ``IdempotentRequestError`` for a reused ``Idempotency-Key``: see :mod:`.idempotency`.
* 5xx bodies and the 503's ``Retry-After: 10`` are UNVERIFIED (an edge answers them; no page
  prints one); the client treats every 5xx as retriable whatever the body.
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

#: The body of the per-user, per-ticket update 429 (text, not JSON), from Zendesk's docs
#: ("Best practices for avoiding rate limiting", its example response).
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


#: The documented example of the per-ticket update 429 answers ``text/html; charset=utf-8``.
TEXT_ERROR_CONTENT_TYPE = "text/html"


def render(error: ZendeskError) -> web.Response:
    """The response the real API would send for ``error``."""
    if isinstance(error.body, str):
        return web.Response(
            status=error.status,
            text=error.body,
            content_type=TEXT_ERROR_CONTENT_TYPE,
            charset="utf-8",
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


def rate_limited(
    retry_after: int,
    headers: dict[str, str] | None = None,
    *,
    description: str = "Number of allowed API requests per minute exceeded",
) -> ZendeskError:
    """429 with ``Retry-After`` (documented); the JSON body is UNVERIFIED (see above)."""
    return ZendeskError(
        429,
        {"error": "APIRateLimitExceeded", "description": description},
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
