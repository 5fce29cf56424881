"""What every REST resource shares: error bodies, auth and limits, JSON bodies, record shape.

Sources:

* "Status Codes and Error Responses",
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm :
  errors are a JSON array of ``{"message", "errorCode"}`` (plus ``fields`` where a field is
  at fault); 401 "the session ID or OAuth token used has expired or is invalid"
  (``INVALID_SESSION_ID``, "Session expired or invalid"); 403 with ``REQUEST_LIMIT_EXCEEDED``
  when the org's API request limit is exceeded; 404 for an unknown resource; 300 when an
  external id matches several records; 405 for a method the resource does not allow.
* "Limit Info Header",
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm :
  ``Sforce-Limit-Info: api-usage=<used>/<limit>`` on every REST response except the Versions
  URI (``/services/data``), which does not count; here on errors too (harsher: a client must
  read it from any answer).
* Versioned paths ``/services/data/vXX.X/...``: "Versions" resource of the same guide
  (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_versions.htm);
  a version outside the org's range answers 404 ``NOT_FOUND`` (UNVERIFIED wording; queries:
  "Salesforce REST API status codes and error responses").
* The message texts besides "Session expired or invalid" are UNVERIFIED (worded like the
  platform's); the product reads ``errorCode``, never ``message``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from sandboxes.base.server import Middleware
from sandboxes.salesforce.auth import Session
from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.fields import DmlError, format_datetime
from sandboxes.salesforce.objects import SObjectSpec
from sandboxes.salesforce.state import Org

__all__ = [
    "ApiError",
    "RestContext",
    "api_middleware",
    "change_origin",
    "error_body",
    "errors_response",
    "read_json",
    "record_json",
    "record_url",
    "rest_context",
    "sobject_spec",
]

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"^/services/data/v(\d+\.\d)(/|$)")
_SESSION_KEY = web.RequestKey("salesforce.session", Session)
_VERSION_KEY = web.RequestKey("salesforce.version", str)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Raised by handlers; rendered as Salesforce's ``[{"message","errorCode"}]`` body."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    @classmethod
    def from_dml(cls, error: DmlError) -> ApiError:
        return cls(error.http_status, error.status_code, error.message, error.fields)

    def response(self) -> web.Response:
        return errors_response(self.status, [error_body(self.code, self.message, self.fields)])


def error_body(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "errorCode": code}
    if fields:
        body["fields"] = fields
    return body


def errors_response(status: int, errors: list[dict[str, Any]]) -> web.Response:
    return web.json_response(errors, status=status)


NOT_FOUND = ("NOT_FOUND", "The requested resource does not exist")


class RestContext:
    """The authenticated caller of one REST request."""

    def __init__(self, session: Session, version: str) -> None:
        self.session = session
        self.version = version


def rest_context(request: web.Request) -> RestContext:
    return RestContext(request[_SESSION_KEY], request[_VERSION_KEY])


def change_origin(request: web.Request, version: str) -> str:
    """``changeOrigin`` of the change events this request causes.

    ``Sforce-Call-Options: client=<id>`` is how an integration tags its own writes, so it can
    recognise (and skip) the change events they cause.
    """
    origin = f"com/salesforce/api/rest/{version}"
    for option in request.headers.get("Sforce-Call-Options", "").split(","):
        key, _, value = option.strip().partition("=")
        if key.strip() == "client" and value.strip():
            return f"{origin};client={value.strip()}"
    return origin


def api_middleware(org: Org) -> Middleware:
    """Version check, session check, the daily allowance and ``Sforce-Limit-Info``."""

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        match = _VERSION.match(request.path)
        if match is None:
            return await handler(request)
        version = match.group(1)
        session = org.oauth.session_from_header(request.headers.get("Authorization"))
        if session is None:
            response: web.StreamResponse = errors_response(
                401, [error_body("INVALID_SESSION_ID", "Session expired or invalid")]
            )
            response.headers["WWW-Authenticate"] = "Token"
        elif not org.config.min_api_version <= float(version) <= org.config.max_api_version:
            response = errors_response(404, [error_body(*NOT_FOUND)])
        elif not org.usage.hit():
            logger.info("salesforce daily api limit reached limit=%s", org.usage.limit)
            response = errors_response(
                403, [error_body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")]
            )
        else:
            request[_SESSION_KEY] = session
            request[_VERSION_KEY] = version
            response = await _dispatch(request, handler)
        response.headers["Sforce-Limit-Info"] = org.usage.header()
        return response

    return middleware


async def _dispatch(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except DmlError as exc:
        return ApiError.from_dml(exc).response()
    except web.HTTPMethodNotAllowed as exc:
        allowed = ",".join(sorted(exc.allowed_methods))
        return errors_response(
            405,
            [
                error_body(
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
                )
            ],
        )
    except web.HTTPNotFound:
        return errors_response(404, [error_body(*NOT_FOUND)])


async def read_json(request: web.Request, limit: int) -> Any:
    """The JSON body, read under the org's own size limit (not aiohttp's 1 MiB default)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "REQUEST_ENTITY_TOO_LARGE", "Request entity too large")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "REQUEST_ENTITY_TOO_LARGE", "Request entity too large")
    try:
        return json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None


def sobject_spec(name: str) -> SObjectSpec:
    for spec in OBJECTS.values():
        if spec.name.lower() == name.lower():
            return spec
    raise ApiError(404, *NOT_FOUND)


def record_url(version: str, sobject: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"


def record_json(
    spec: SObjectSpec, record: dict[str, Any], version: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """A record as REST returns it: ``attributes`` first, then fields in object order."""
    url = record_url(version, spec.name, record["Id"])
    body: dict[str, Any] = {"attributes": {"type": spec.name, "url": url}}
    wanted = spec.field_names if fields is None else fields
    for name in wanted:
        field = spec.field(name)
        if field is None:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{name}' on entity '{spec.name}'."
            )
        value = record.get(field.name)
        if field.type == "base64":
            value = f"{url}/{field.name}"
        elif isinstance(value, datetime):
            value = format_datetime(value)
        body[field.name] = value
    return body
