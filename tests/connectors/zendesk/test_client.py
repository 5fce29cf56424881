"""The Zendesk client on ``httpx.MockTransport``: the one classifier, rate headers, auth, the
budget, pagination and attachment downloads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.base.settings import ConnectorSettings
from connectors.zendesk.client import UpdateConflictError, ZendeskClient, classify, rate_headers
from sandboxes.zendesk import basic_header
from schemas.errors import (
    APIError,
    ConfigurationError,
    FatalAPIError,
    RateLimitedError,
    RetriableAPIError,
)

BASE = "https://acme.zendesk.com"
Handler = Callable[[httpx.Request], httpx.Response]


def settings(**overrides: Any) -> ConnectorSettings:
    values: dict[str, Any] = {
        "platform": "zendesk",
        "api_base_url": BASE,
        "api_user": "sync@acme.example",
        "api_token": SecretStr("s3cr3t-token-value"),
    }
    return ConnectorSettings.model_validate(values | overrides)


def make_client(
    handler: Handler, budget: RateBudget | None = None, **overrides: Any
) -> ZendeskClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ZendeskClient(http, settings=settings(**overrides), budget=budget)


def response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    request = httpx.Request("PUT", f"{BASE}/api/v2/tickets/7?x=maria@example.com")
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


TICKET_LIMIT_TEXT = (
    "Rate limit for ticket updates exceeded, please wait before updating this ticket again"
)
INVALID = {
    "error": "RecordInvalid",
    "description": "Record validation errors",
    "details": {"email": [{"description": "Email: maria@example.com is already being used"}]},
}


@pytest.mark.parametrize(
    ("answer", "error", "retry_after", "says"),
    [
        pytest.param(
            response(429, {"error": "APIRateLimitExceeded"}, **{"Retry-After": "17"}),
            RateLimitedError,
            17.0,
            "API budget is spent",
            id="rate-limited",
        ),
        pytest.param(
            response(429, TICKET_LIMIT_TEXT, **{"Retry-After": "540"}),
            RateLimitedError,
            540.0,
            "30 updates in 10 minutes",
            id="ticket-update-limit",
        ),
        pytest.param(
            response(503, {"error": "ServiceUnavailable", "description": "down"}),
            RetriableAPIError,
            None,
            "answered 503 (down): Zendesk is failing; will retry",
            id="server-error-503",
        ),
        pytest.param(
            response(409, {"error": "UpdateConflict", "description": "Safe Update prevented"}),
            UpdateConflictError,
            None,
            "changed after the updated_stamp sent with safe_update; re-read it",
            id="safe-update-conflict-409",
        ),
        pytest.param(
            response(409, {"error": "Conflict", "description": "busy"}),
            RetriableAPIError,
            None,
            "a concurrent update; will retry",
            id="conflict-409",
        ),
        pytest.param(
            response(422, INVALID),
            FatalAPIError,
            None,
            "Email: <email> is already being used): Zendesk refused the values; fix the mapping",
            id="validation-422",
        ),
        pytest.param(
            response(401, {"error": "Couldn't authenticate you"}),
            FatalAPIError,
            None,
            "check the connector's api_user and api_token",
            id="auth-401",
        ),
        pytest.param(
            response(400, {"error": "IdempotentRequestError", "description": "mismatch"}),
            RetriableAPIError,
            None,
            "finds its ticket by external_id",
            id="idempotency-key-reused",
        ),
    ],
)
def test_classifier(
    answer: httpx.Response, error: type[APIError], retry_after: float | None, says: str
) -> None:
    with pytest.raises(error) as raised:
        classify(answer)
    assert type(raised.value) is error
    assert says in str(raised.value)
    assert raised.value.status == answer.status_code
    assert "maria@example.com" not in str(raised.value)  # no PII, query string included
    if retry_after is not None:
        assert isinstance(raised.value, RateLimitedError)
        assert raised.value.retry_after == retry_after


@pytest.mark.parametrize("status", [200, 201, 204, 302])
def test_classifier_lets_success_through(status: int) -> None:
    classify(response(status, {}))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, RateHeaders(), id="none"),
        pytest.param(
            {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"},
            RateHeaders(limit=700, remaining=699),
            id="account",
        ),
        pytest.param(
            {"ratelimit-limit": "700", "ratelimit-remaining": "12", "ratelimit-reset": "41"},
            RateHeaders(limit=700, remaining=12, reset_after_s=41.0),
            id="ticketing-api",
        ),
        pytest.param(
            {
                "X-Rate-Limit": "2500",
                "X-Rate-Limit-Remaining": "2400",
                "ratelimit-limit": "700",
                "ratelimit-remaining": "30",
            },
            RateHeaders(limit=700, remaining=30),
            id="both-the-tighter-wins",
        ),
        pytest.param(
            {"X-Rate-Limit": "lots", "ratelimit-reset": "soon"}, RateHeaders(), id="garbage"
        ),
    ],
)
def test_rate_headers(headers: dict[str, str], expected: RateHeaders) -> None:
    assert rate_headers(response(200, {}, **headers)) == expected


async def test_calls_are_authenticated_counted_and_budgeted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={"user": {"id": 42, "name": "Sync", "role": "admin"}},
            headers={"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0"},
        )

    budget = RateBudget(700, 60.0)
    client = make_client(handler, budget)
    user = await client.me()
    assert (user.id, client.calls, client.last_status) == ("42", 1, 200)
    assert str(seen[0].url) == f"{BASE}/api/v2/users/me"
    assert seen[0].headers["Authorization"] == basic_header(
        "sync@acme.example", "s3cr3t-token-value"
    )
    assert budget.delay() > 0  # "remaining: 0" was taken into the budget


async def test_oauth_bearer_without_api_user_and_token_file_rotation(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-oauth-token\n")
    headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers["Authorization"])
        return httpx.Response(200, json={"user": {"id": 1}})

    client = make_client(handler, api_user=None, api_token=None, api_token_file=token_file)
    await client.me()
    token_file.write_text("rotated-oauth-token")
    await client.me()
    assert headers == ["Bearer first-oauth-token", "Bearer rotated-oauth-token"]


def test_missing_credentials_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="no api_token"):
        make_client(lambda r: httpx.Response(200), api_token=None)
    with pytest.raises(ConfigurationError, match="no api_base_url"):
        make_client(lambda r: httpx.Response(200), api_base_url=None)


async def test_ticket_update_limit_does_not_drain_the_account_budget() -> None:
    answers = {
        "/api/v2/tickets/1": httpx.Response(
            429, text=TICKET_LIMIT_TEXT, headers={"Retry-After": "600"}
        ),
        "/api/v2/tickets/2": httpx.Response(429, json={}, headers={"Retry-After": "30"}),
    }
    budget = RateBudget(700, 60.0)
    client = make_client(lambda request: answers[request.url.path], budget)
    with pytest.raises(RateLimitedError) as per_ticket:
        await client.update_ticket("1", {"status": "open"})
    assert per_ticket.value.retry_after == 600
    assert budget.delay() == 0  # other tickets can still be written at once
    with pytest.raises(RateLimitedError):
        await client.update_ticket("2", {"status": "open"})
    assert budget.delay() >= 29  # the account limit stops every call


async def test_timeouts_and_resets_are_retriable_and_never_leak_httpx() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RetriableAPIError, match="timed out"):
        await make_client(timeout).me()

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("reset", request=request)

    with pytest.raises(RetriableAPIError, match="ConnectError"):
        await make_client(reset).me()


async def test_fatal_messages_carry_no_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        echoed = {"error": "Forbidden", "description": request.headers["Authorization"]}
        return httpx.Response(403, json=echoed)

    with pytest.raises(FatalAPIError) as raised:
        await make_client(handler).me()
    assert "the integration user must be an admin" in str(raised.value)
    assert "Basic <redacted>" in str(raised.value)
    assert "czNjcjN0" not in str(raised.value)  # the base64 of the token's start


async def test_unexpected_body_is_retriable() -> None:
    client = make_client(lambda r: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(RetriableAPIError, match="without a JSON object"):
        await client.me()


async def test_comments_follow_cursor_pages_up_to_the_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params.get("page[after]", "0"))
        rows = [{"id": after + i + 1, "body": f"c{after + i + 1}"} for i in range(2)]
        next_url = f"{BASE}/api/v2/tickets/9/comments?page[size]=2&page[after]={after + 2}"
        return httpx.Response(
            200,
            json={
                "comments": rows,
                "meta": {"has_more": after < 4},
                "links": {"next": next_url},
            },
        )

    client = make_client(handler)
    assert [c.id for c in await client.comments("9")] == ["1", "2", "3", "4", "5", "6"]
    assert client.calls == 3
    assert [c.body for c in await client.comments("9", limit=3)] == ["c1", "c2", "c3"]
    assert client.calls == 5  # stopped once it had three


async def test_create_sends_the_idempotency_key_and_reads_the_audit() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201,
            json={
                "ticket": {"id": 5, "status": "new", "tags": []},
                "audit": {"id": 8, "events": [{"type": "Create"}, {"type": "Comment", "id": 77}]},
            },
        )

    write = await make_client(handler).create_ticket({"subject": "x"}, idempotency_key="cmd-1")
    assert seen[0].headers["Idempotency-Key"] == "cmd-1"
    assert json.loads(seen[0].content) == {"ticket": {"subject": "x"}}
    assert write.audit is not None
    assert (write.ticket.id, write.audit.comment_id()) == ("5", "77")


@pytest.mark.parametrize(
    ("status", "body", "error", "says"),
    [
        pytest.param(404, b"", FatalAPIError, "gone or its link expired", id="gone"),
        pytest.param(503, b"", RetriableAPIError, "will retry", id="source-down"),
        pytest.param(200, b"other bytes", FatalAPIError, "another sha256", id="sha-mismatch"),
    ],
)
async def test_download_errors(status: int, body: bytes, error: type[APIError], says: str) -> None:
    client = make_client(lambda r: httpx.Response(status, content=body))
    wanted = hashlib.sha256(b"the bytes").hexdigest()
    with pytest.raises(error, match=says):
        await client.download("https://files.example/a.png", name="a.png", sha256=wanted)
    assert client.calls == 0  # not a Zendesk call: no budget, no count


async def test_download_sends_no_zendesk_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"the bytes")

    client = make_client(handler)
    data = await client.download("https://files.example/a.png", name="a.png")
    assert data == b"the bytes"
    assert "Authorization" not in seen[0].headers
