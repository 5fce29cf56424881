"""Intercom's error envelope: ``{"type":"error.list","request_id":...,"errors":[...]}``.

Every error the sandbox returns, injected or real, goes through :func:`error_list`, so clients
always see the shape the official spec documents (``intercom-openapi-2.14.yaml``,
``components.schemas.error``: ``type`` and ``errors`` required, each error a required
``code`` with optional ``message`` and ``field``; ``request_id`` nullable) and "Error
Objects", https://developers.intercom.com/docs/references/2.17/rest-api/errors/error-objects
(``request_id`` is "included on most errors, but a few leave it out"). The sandbox always
sends one; the client reads only ``errors[0].code`` and ``message`` and needs neither
(``connectors/intercom/client.py``, ``_error_detail``). The codes used here
(``unauthorized``, ``not_found``, ``parameter_invalid``, ``parameter_not_found``,
``rate_limit_exceeded``) are the spec's and the error pages' own; the wording of messages
other than the spec's examples is UNVERIFIED.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from aiohttp import web

__all__ = ["IntercomAPIError", "error_list", "new_request_id"]


def new_request_id(rng: random.Random) -> str:
    """A UUID4 string drawn from the sandbox's seeded generator."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def error_list(
    status: int,
    code: str,
    message: str | None,
    *,
    request_id: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The Intercom error response for one error object."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    body = {"type": "error.list", "request_id": request_id, "errors": [error]}
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


class IntercomAPIError(Exception):
    """Raised by handlers and the state model; rendered by the sandbox's error middleware."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def not_found(cls, message: str = "Resource Not Found") -> IntercomAPIError:
        return cls(404, "not_found", message)

    @classmethod
    def invalid(cls, message: str, *, field: str | None = None) -> IntercomAPIError:
        return cls(400, "parameter_invalid", message, field=field)

    @classmethod
    def missing(cls, name: str) -> IntercomAPIError:
        return cls(400, "parameter_not_found", f"{name} is a required parameter.", field=name)
