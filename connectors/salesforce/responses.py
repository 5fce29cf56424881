"""Salesforce REST answers: the one response classifier and the one message builder.

Source: "Status Codes and Error Responses" (REST API Developer Guide),
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm :
errors are a JSON array of ``{"message", "errorCode", "fields"}``; 300 when an external id
matches several records; 401 ``INVALID_SESSION_ID`` when the token expired or was revoked;
403 ``REQUEST_LIMIT_EXCEEDED`` when an API limit is exceeded; 404 for a missing record or
resource; 5xx when Salesforce fails. Salesforce sends no 429 and no ``Retry-After``.

What the caller does next:

    300 (several external id matches)   MultipleMatchesError (fatal)   merge the duplicates
    401 INVALID_SESSION_ID               InvalidSessionError            new token, once
    403 REQUEST_LIMIT_EXCEEDED, daily    DailyLimitExceededError        pause (DailyLimit)
        allowance spent (the answer's
        Sforce-Limit-Info: used >= limit)
    403 REQUEST_LIMIT_EXCEEDED, other    RateLimitedError(10 s)         too many long-running
        (concurrent long requests)                                      requests: wait
    404                                  NotFoundError (fatal)
    5xx                                  RetriableAPIError
    other 4xx                            FatalAPIError, with what to fix

A 403 ``REQUEST_LIMIT_EXCEEDED`` is refused before the request runs, so repeating a write
after it is safe.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base.http import redact
from connectors.salesforce.limits import parse_limit_info
from schemas.errors import FatalAPIError, RateLimitedError, RetriableAPIError

__all__ = [
    "DailyLimitExceededError",
    "InvalidSessionError",
    "MultipleMatchesError",
    "NotFoundError",
    "classify",
    "error_message",
    "errors_of",
]

#: how long to wait after a refusal for concurrent long-running requests (none is documented;
#: such requests last 20 s or more, so a short wait lets some finish)
_CONCURRENCY_WAIT_S = 10.0

_ADVICE = {
    400: "Salesforce refused the values (a field or picklist value the org does not accept?); "
    "fix the mapping in the rules file, then `deskstream dlq retry` the command",
    401: "Salesforce refused a freshly issued token: check that the integration user is active "
    "and its profile has API Enabled",
    403: "the integration user lacks permission on this object or field (profile or permission "
    "set), or the org has API access turned off",
    404: "the record or resource does not exist (deleted or merged in Salesforce?), or the org "
    "does not serve this API version",
    405: "the resource does not allow this method: a Deskstream bug, report it",
    413: "the request is larger than Salesforce accepts; send fewer or smaller records",
}


class InvalidSessionError(RetriableAPIError):
    """401: the token expired or was revoked. The client invalidates it and retries once."""


class DailyLimitExceededError(RetriableAPIError):
    """403 ``REQUEST_LIMIT_EXCEEDED`` with the daily allowance spent: the client pauses."""


class NotFoundError(FatalAPIError):
    """404: the record does not exist."""


class MultipleMatchesError(FatalAPIError):
    """300: several records carry the external id; ``urls`` are theirs."""

    def __init__(self, message: str, *, urls: list[str]) -> None:
        super().__init__(message, status=300)
        self.urls = urls


def _what(response: httpx.Response) -> str:
    try:
        request = response.request
    except RuntimeError:
        return "salesforce call"
    # Query strings carry SOQL with customer values: the path only.
    return f"salesforce {request.method} {request.url.path}"


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``[{"message","errorCode","fields"}]`` of an error answer (empty when not JSON)."""
    body = _body(response)
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def _summary(response: httpx.Response) -> tuple[str, str]:
    errors = errors_of(response)
    if not errors:
        return "", response.text.strip()[:200]
    code = str(errors[0].get("errorCode", ""))
    parts = []
    for error in errors[:3]:
        fields = error.get("fields") or []
        where = f" [{', '.join(map(str, fields))}]" if fields else ""
        parts.append(f"{error.get('errorCode', '')}: {error.get('message', '')}{where}")
    return code, "; ".join(parts)


def error_message(response: httpx.Response, advice: str | None = None) -> str:
    """What happened and what to do next, without tokens or emails."""
    _, description = _summary(response)
    status = response.status_code
    advice = advice or _ADVICE.get(status, "retrying will not help; see Salesforce's answer")
    return redact(f"{_what(response)} answered {status} ({description}): {advice}")


def _daily_spent(response: httpx.Response, description: str) -> bool:
    usage = parse_limit_info(response.headers.get("sforce-limit-info"))
    if usage is not None:
        return usage[0] >= usage[1]
    # Without the header, the message: "TotalRequests Limit exceeded." is how developers quote
    # the daily refusal (UNVERIFIED wording, searched "REQUEST_LIMIT_EXCEEDED TotalRequests").
    return "totalrequests" in description.lower()


def classify(response: httpx.Response) -> None:
    """Salesforce's one response classifier: return for success, raise what the caller needs."""
    status = response.status_code
    if status == 300:
        body = _body(response)
        urls = [str(u) for u in body] if isinstance(body, list) else []
        raise MultipleMatchesError(
            redact(
                f"{_what(response)} answered 300: {len(urls)} records carry this external id; "
                "merge the duplicates in Salesforce (or clear the id on all but one), then "
                "`deskstream dlq retry` the command"
            ),
            urls=urls,
        )
    if status < 400:
        return
    what = _what(response)
    code, description = _summary(response)
    if status == 401:
        raise InvalidSessionError(
            f"{what} answered 401 {code or 'INVALID_SESSION_ID'}: the token expired or was "
            "revoked; fetching a new one",
            status=status,
        )
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        if _daily_spent(response, description):
            raise DailyLimitExceededError(
                f"{what} answered 403 REQUEST_LIMIT_EXCEEDED: the org's daily API allowance is "
                "spent; calls pause until the rolling 24 hours free some",
                status=status,
            )
        raise RateLimitedError(
            redact(
                f"{what} answered 403 REQUEST_LIMIT_EXCEEDED ({description}): too many "
                f"long-running requests in the org; waiting {_CONCURRENCY_WAIT_S:.0f} s"
            ),
            retry_after=_CONCURRENCY_WAIT_S,
            status=status,
        )
    if status >= 500:
        raise RetriableAPIError(
            redact(f"{what} answered {status} ({description}): Salesforce is failing; will retry"),
            status=status,
        )
    if status == 404:
        raise NotFoundError(error_message(response), status=status)
    raise FatalAPIError(error_message(response), status=status)
