"""The Intercom client on ``httpx.MockTransport``: the one classifier, rate headers, the budget,
auth headers and the typed calls' request shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base.http import counting
from connectors.base.ratelimit import RateBudget
from connectors.base.settings import ConnectorSettings
from connectors.intercom.client import (
    ConflictError,
    IntercomClient,
    NotFoundError,
    budget_for,
    classify,
    rate_headers,
)
from connectors.intercom.models import Contact
from sandboxes.base import ManualClock, run_sandboxes
from schemas.errors import (
    ConfigurationError,
    FatalAPIError,
    RateLimitedError,
    RetriableAPIError,
)
from tests.sandboxes.intercom.conftest import TOKEN as SBX
from tests.sandboxes.intercom.conftest import make_sandbox

NOW = 1_700_000_000.0
TOKEN = "tok_live_abcdefghijklmnop"

Handler = Callable[[httpx.Request], httpx.Response]


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "type": "error.list",
        "request_id": "r-1",
        "errors": [{"code": code, "message": message}],
    }


def _response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("POST", "https://api.intercom.io/contacts")
    return httpx.Response(status, json=body, headers=headers, request=request)


def _client(handler: Handler, *, token: str | None = TOKEN) -> IntercomClient:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="https://api.intercom.io"
    )
    return IntercomClient(
        http,
        token=lambda: SecretStr(token) if token else None,
        budget=RateBudget(1000, 10.0),
        now=lambda: NOW,
    )


# -- the classifier -----------------------------------------------------------------------------

CLASSIFIED: list[Any] = [
    pytest.param(200, {}, {}, None, None, id="ok"),
    pytest.param(
        429,
        _error("rate_limit_exceeded", "Exceeded rate limit of 1666 in 10_seconds"),
        {"X-RateLimit-Reset": str(int(NOW) + 7)},
        RateLimitedError,
        7.0,
        id="rate-limited-waits-until-reset",
    ),
    pytest.param(
        429,
        _error("rate_limit_exceeded", "Exceeded"),
        {"X-RateLimit-Reset": str(int(NOW) - 30), "Retry-After": "3"},
        RateLimitedError,
        3.0,
        id="rate-limited-reset-in-the-past-uses-retry-after",
    ),
    pytest.param(
        429,
        _error("rate_limit_exceeded", "Exceeded"),
        {},
        RateLimitedError,
        10.0,
        id="rate-limited-no-headers-waits-a-window",
    ),
    pytest.param(500, _error("server_error", "oops"), {}, RetriableAPIError, None, id="server-500"),
    pytest.param(503, None, {}, RetriableAPIError, None, id="server-503-no-body"),
    pytest.param(408, None, {}, RetriableAPIError, None, id="request-timeout-408"),
    pytest.param(
        409,
        _error("conflict", "A contact matching those details already exists with id=5f1a2b"),
        {},
        ConflictError,
        None,
        id="conflict-409",
    ),
    pytest.param(404, _error("not_found", "User Not Found"), {}, NotFoundError, None, id="404"),
    pytest.param(
        401, _error("unauthorized", "Access Token Invalid"), {}, FatalAPIError, None, id="401"
    ),
    pytest.param(
        400,
        _error("parameter_invalid", "Custom attribute 'plan' does not exist"),
        {},
        FatalAPIError,
        None,
        id="invalid-400",
    ),
    pytest.param(
        403,
        _error("api_plan_restricted", "Active subscription needed."),
        {},
        FatalAPIError,
        None,
        id="plan-restricted-403",
    ),
]


@pytest.mark.parametrize(("status", "body", "headers", "raised", "wait"), CLASSIFIED)
def test_classifier(
    status: int, body: Any, headers: dict[str, str], raised: type[Exception] | None, wait: float
) -> None:
    response = _response(status, body, headers)
    if raised is None:
        classify(response, now=lambda: NOW)
        return
    with pytest.raises(raised) as caught:
        classify(response, now=lambda: NOW)
    error = caught.value
    assert not isinstance(error, RetriableAPIError) or status >= 408
    if isinstance(error, FatalAPIError):
        assert not isinstance(error, RetriableAPIError)
        assert error.status == status
    if wait is not None:
        assert isinstance(error, RateLimitedError)
        assert error.retry_after == pytest.approx(wait)


def test_conflict_names_the_existing_record() -> None:
    body = _error("conflict", "A contact matching those details already exists with id=5f1a2b")
    with pytest.raises(ConflictError) as caught:
        classify(_response(409, body))
    assert caught.value.existing_id == "5f1a2b"


def test_fatal_messages_say_what_to_do_and_carry_no_pii() -> None:
    body = _error("parameter_invalid", "email maria.lopez@example.com is invalid")
    with pytest.raises(FatalAPIError) as caught:
        classify(_response(400, body))
    message = str(caught.value)
    assert "maria.lopez" not in message
    assert "fix the mapping" in message
    assert "POST /contacts answered 400 parameter_invalid" in message
    with pytest.raises(FatalAPIError, match="update the connector's api_token"):
        classify(_response(401, _error("unauthorized", "Access Token Invalid")))


# -- rate headers and the budget ----------------------------------------------------------------


def test_rate_headers_turn_the_unix_reset_into_seconds_from_now() -> None:
    response = _response(
        200,
        {},
        {
            "X-RateLimit-Limit": "1666",
            "X-RateLimit-Remaining": "1200",
            "X-RateLimit-Reset": "1700000004",
        },
    )
    headers = rate_headers(response, now=lambda: NOW)
    assert (headers.limit, headers.remaining, headers.reset_after_s) == (1666, 1200, 4.0)


def test_rate_headers_missing_or_garbled_are_none() -> None:
    headers = rate_headers(_response(200, {}, {"X-RateLimit-Limit": "lots"}), now=lambda: NOW)
    assert (headers.limit, headers.remaining, headers.reset_after_s) == (None, None, None)


@pytest.mark.parametrize(
    ("per_minute", "per_window"),
    [
        pytest.param(None, 1666, id="private-app-default"),
        pytest.param(1000, 166, id="1000-per-min"),
    ],
)
def test_budget_is_a_sixth_of_the_minute_per_ten_second_window(
    per_minute: int | None, per_window: int
) -> None:
    now = [0.0]
    settings = ConnectorSettings(platform="intercom", rate_limit_per_minute=per_minute)
    budget = budget_for(settings, clock=lambda: now[0])

    def burst() -> int:
        """Calls allowed at once; the first refused one borrows a token."""
        count = 0
        while budget.delay() == 0.0:
            count += 1
        return count

    # Time stands still: one window's calls go through at once (3 % kept as headroom)...
    assert burst() == int(per_window * 0.97)
    # ...and the window refills in ten seconds, not in a minute.
    now[0] += 10.0
    assert burst() == int(per_window * 0.97) - 1


async def test_a_response_corrects_the_budget_from_its_headers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"type": "admin", "id": "1"},
            headers={"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0"},
        )

    client = _client(handler)
    await client.me()
    assert client.budget.delay() > 0  # Intercom said nothing is left: the next call waits


# -- auth, counting, typed calls ----------------------------------------------------------------


async def test_every_call_carries_bearer_token_and_version() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"type": "admin", "id": "991267001", "name": "Owner"})

    admin = await _client(handler).me()
    assert admin.id == "991267001"
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["Intercom-Version"] == "2.14"


async def test_missing_token_is_a_configuration_error_before_any_call() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    with pytest.raises(ConfigurationError, match="API_TOKEN_FILE"):
        await _client(handler, token=None).me()
    assert calls == []


async def test_counting_is_per_task_and_records_the_last_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/missing"):
            return httpx.Response(404, json=_error("not_found", "User Not Found"))
        return httpx.Response(200, json={"type": "contact", "id": "c1"})

    client = _client(handler)
    with counting() as count:
        await client.get_contact("c1")
        assert await client.find_contact_by_external_id("missing") is None
    assert (count.calls, count.last_status) == (2, 404)
    assert client.calls == 2


async def test_email_search_is_one_or_query_per_fifteen_addresses() -> None:
    queries: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(json.loads(request.content)["query"])
        return httpx.Response(200, json={"type": "list", "data": [], "total_count": 0})

    emails = [f"u{i}@example.com" for i in range(16)] + ["U0@Example.com "]
    await _client(handler).search_contacts_by_email(emails)
    assert len(queries) == 2  # 16 distinct addresses: a group of 15, then one filter
    assert queries[0]["operator"] == "OR"
    assert len(queries[0]["value"]) == 15
    assert queries[1] == {"field": "email", "operator": "=", "value": "u15@example.com"}


async def test_tag_ids_read_the_list_once_and_create_what_is_missing() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            return httpx.Response(200, json={"type": "list", "data": [{"id": "7", "name": "vip"}]})
        name = json.loads(request.content)["name"]
        return httpx.Response(200, json={"type": "tag", "id": "8", "name": name})

    client = _client(handler)
    assert await client.tag_ids(["vip", "escalate"], create=True) == {"vip": "7", "escalate": "8"}
    assert await client.tag_ids(["vip", "escalate", "gone"], create=False) == {
        "vip": "7",
        "escalate": "8",
    }
    assert calls == ["GET /tags", "POST /tags"]


async def test_admin_message_request_follows_the_spec() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={"type": "admin_message", "id": "19", "body": "hi", "conversation_id": "613"},
        )

    contact = Contact(id="6762f2341bb69f9f2193bc17", role="lead")
    sent = await _client(handler).send_admin_message(admin_id="991267816", to=contact, body="hi")
    assert sent.conversation_id == "613"
    assert bodies == [
        {
            "message_type": "in_app",
            "body": "hi",
            "from": {"type": "admin", "id": 991267816},
            "to": {"type": "lead", "id": "6762f2341bb69f9f2193bc17"},
            "create_conversation_without_contact_reply": True,
        }
    ]


async def test_transport_failures_and_non_json_bodies_are_retriable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RetriableAPIError, match="timed out"):
        await _client(timeout).get_conversation("1")

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>maintenance</html>")

    with pytest.raises(RetriableAPIError, match="not JSON"):
        await _client(garbage).get_conversation("1")


async def test_a_sandbox_429_waits_until_the_window_resets(clock: ManualClock) -> None:
    # One request per 10-second window; the manual clock starts on a window boundary.
    sandbox = make_sandbox(clock=clock, webhook_url=None, rate_limit_per_minute=6)
    async with run_sandboxes([sandbox]) as running:
        url = running.url("intercom")
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {SBX}"}) as c:
            assert (await c.get("/me")).status_code == 200  # another worker spends the window
        clock.advance(4)
        settings = ConnectorSettings(
            platform="intercom", api_base_url=url, api_token=SecretStr(SBX)
        )
        client = IntercomClient.from_settings(settings, now=lambda: clock.now().timestamp())
        with pytest.raises(RateLimitedError, match="rate_limit_exceeded") as caught:
            await client.me()
        assert caught.value.retry_after == pytest.approx(6.0)
        assert client.budget.delay() >= 6.0  # the budget holds back until the reset, too
        await client.aclose()
