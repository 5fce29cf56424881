"""Authentication, OAuth scopes, rate-limit headers, 429s and the per-ticket update limit."""

from __future__ import annotations

import base64

import httpx
import pytest

from sandboxes.base import ManualClock
from sandboxes.zendesk import basic_header
from sandboxes.zendesk.errors import TICKET_UPDATE_LIMIT_TEXT
from tests.sandboxes.zendesk.conftest import EMAIL, TOKEN, ZendeskEnv, serve

COULD_NOT_AUTH = {"error": "Couldn't authenticate you"}


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [
        pytest.param(None, 401, "Couldn't authenticate you", id="missing"),
        pytest.param(
            basic(f"{EMAIL}/token:wrong"), 401, "Couldn't authenticate you", id="bad-token"
        ),
        pytest.param(basic(f"{EMAIL}:{TOKEN}"), 401, "Couldn't authenticate you", id="password"),
        pytest.param(
            basic(f"nobody@x.org/token:{TOKEN}"),
            401,
            "Couldn't authenticate you",
            id="unknown-user",
        ),
        pytest.param("Basic !!!", 401, "Couldn't authenticate you", id="garbage"),
        pytest.param("Bearer nope", 401, "invalid_token", id="bad-oauth"),
        pytest.param(basic_header(EMAIL, TOKEN), 200, None, id="api-token"),
        pytest.param("Bearer sandbox-oauth-token", 200, None, id="oauth"),
    ],
)
async def test_authentication(
    zendesk: ZendeskEnv, authorization: str | None, status: int, error: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=zendesk.url, headers=headers) as client:
        response = await client.get("/api/v2/users/me")
    assert response.status_code == status
    if error is not None:
        assert response.json()["error"] == error
        assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/api/v2/tickets", 200, id="read"),
        pytest.param("POST", "/api/v2/users", 400, id="users-write"),
        pytest.param("POST", "/api/v2/tickets", 400, id="tickets-write"),
    ],
)
async def test_oauth_scopes_allow_least_privilege(
    clock: ManualClock, method: str, path: str, status: int
) -> None:
    headers = {"Authorization": "Bearer read-only"}
    async with (
        serve(
            clock,
            oauth_tokens={
                "read-only": {"email": EMAIL, "scopes": ["read"]},
                "sandbox-oauth-token": {
                    "email": EMAIL,
                    "scopes": ["read", "tickets:write", "users:write"],
                },
            },
        ) as env,
        httpx.AsyncClient(base_url=env.url) as client,
    ):
        allowed = await client.request(
            method, path, json={}, headers={"Authorization": "Bearer sandbox-oauth-token"}
        )
        # 400 ParameterMissing: authorised, but the empty body has no "user"/"ticket".
        assert allowed.status_code == status
        limited = await client.request(method, path, json={}, headers=headers)
        if method == "GET":
            assert limited.status_code == 200
        else:
            assert limited.status_code == 403
            assert limited.json()["error"] == "Forbidden"


async def test_rate_limit_headers_count_down(zendesk: ZendeskEnv) -> None:
    first = await zendesk.http.get("/api/v2/tickets")
    second = await zendesk.http.get("/api/v2/tickets")
    for name in ("X-Rate-Limit", "ratelimit-limit"):
        assert second.headers[name] == "700"
    assert int(first.headers["X-Rate-Limit-Remaining"]) - 1 == int(
        second.headers["ratelimit-remaining"]
    )
    assert 0 < int(second.headers["ratelimit-reset"]) <= 60


async def test_account_limit_429_with_retry_after_then_recovers(clock: ManualClock) -> None:
    clock.advance(30)  # half way through a minute window
    async with serve(clock, plan="team", rate_limit_per_minute=3) as env:
        statuses = [(await env.http.get("/api/v2/tickets")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await env.http.get("/api/v2/tickets")
        assert refused.json()["error"] == "APIRateLimitExceeded"
        assert refused.headers["Retry-After"] == "30"
        assert refused.headers["X-Rate-Limit-Remaining"] == "0"
        clock.advance(30)
        assert (await env.http.get("/api/v2/tickets")).status_code == 200


def test_plan_defaults() -> None:
    from sandboxes.zendesk import ZendeskSandboxConfig

    assert ZendeskSandboxConfig().account_rate_limit == 700
    assert ZendeskSandboxConfig(plan="team").account_rate_limit == 200
    assert ZendeskSandboxConfig(plan="high_volume").account_rate_limit == 2500
    assert ZendeskSandboxConfig().max_comments == 5000


async def test_thirty_updates_per_ticket_per_user_per_ten_minutes(zendesk: ZendeskEnv) -> None:
    ticket = await zendesk.create_ticket()
    other = await zendesk.create_ticket()
    url = f"/api/v2/tickets/{ticket['id']}"
    for i in range(30):
        ok = await zendesk.http.put(url, json={"ticket": {"subject": f"s{i}"}})
        assert ok.status_code == 200, i
    limited = await zendesk.http.put(url, json={"ticket": {"subject": "one more"}})
    assert limited.status_code == 429
    assert limited.text == TICKET_UPDATE_LIMIT_TEXT
    assert int(limited.headers["Retry-After"]) <= 600
    shown = (await zendesk.http.get(url)).json()["ticket"]
    assert shown["subject"] == "s29"
    # Another ticket, or another user on the same ticket, has its own budget.
    assert (
        await zendesk.http.put(f"/api/v2/tickets/{other['id']}", json={"ticket": {"subject": "x"}})
    ).status_code == 200
    admin = basic_header("admin@deskstream-sandbox.test", TOKEN)
    as_admin = await zendesk.http.put(
        url, json={"ticket": {"subject": "admin"}}, headers={"Authorization": admin}
    )
    assert as_admin.status_code == 200
    zendesk.clock.advance(600)
    assert (await zendesk.http.put(url, json={"ticket": {"subject": "later"}})).status_code == 200


async def test_the_per_ticket_update_429_is_the_documented_html_text(clock: ManualClock) -> None:
    """ "Best practices for avoiding rate limiting": the per-ticket update 429 is a text body
    sent as ``text/html; charset=utf-8`` with ``Retry-After``, not a JSON error."""
    async with serve(clock, ticket_update_limit=1) as env:
        ticket = await env.create_ticket()
        url = f"/api/v2/tickets/{ticket['id']}"
        assert (await env.http.put(url, json={"ticket": {"subject": "a"}})).status_code == 200
        limited = await env.http.put(url, json={"ticket": {"subject": "b"}})
    assert limited.status_code == 429
    assert limited.headers["Content-Type"] == "text/html; charset=utf-8"
    assert limited.text == TICKET_UPDATE_LIMIT_TEXT
    assert int(limited.headers["Retry-After"]) > 0


async def test_update_ticket_allows_a_hundred_requests_a_minute_per_account(
    clock: ManualClock,
) -> None:
    """ "Rate limits", Update Ticket: 100 requests a minute per account, whatever the ticket
    or the user, well below the plan's 700; other endpoints keep their budget."""
    clock.advance(60 - clock.now().timestamp() % 60 + 20)  # 40 s before the window ends
    async with serve(clock) as env:
        ids = [(await env.create_ticket(subject=f"t{i}"))["id"] for i in range(4)]
        admin = basic_header("admin@deskstream-sandbox.test", TOKEN)
        for i in range(100):
            who = {"Authorization": admin} if i % 2 else {}
            answer = await env.http.put(
                f"/api/v2/tickets/{ids[i % 4]}", json={"ticket": {"subject": f"s{i}"}}, headers=who
            )
            assert answer.status_code == 200, i
        refused = await env.http.put(
            f"/api/v2/tickets/{ids[0]}", json={"ticket": {"priority": "high"}}
        )
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "40"
        assert refused.json()["error"] == "APIRateLimitExceeded"
        assert (await env.http.get(f"/api/v2/tickets/{ids[0]}")).json()["ticket"][
            "priority"
        ] is None
        assert (await env.http.get("/api/v2/tickets")).status_code == 200
        clock.advance(40)
        again = await env.http.put(
            f"/api/v2/tickets/{ids[0]}", json={"ticket": {"priority": "high"}}
        )
        assert again.status_code == 200


async def test_unknown_endpoint_is_json_404(zendesk: ZendeskEnv) -> None:
    response = await zendesk.http.get("/api/v2/nothing_here")
    assert response.status_code == 404
    assert response.json() == {"error": "InvalidEndpoint", "description": "Not found"}
