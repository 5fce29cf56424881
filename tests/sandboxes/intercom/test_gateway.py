"""Auth, API version and rate limiting in front of every Intercom sandbox endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandboxes.base import FaultProfile, ManualClock, run_sandboxes
from tests.sandboxes.intercom.conftest import TOKEN, IntercomEnv, make_sandbox


@pytest.fixture
async def limited(clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    # 30/min in 10-second windows = 5 requests per window.
    sandbox = make_sandbox(clock=clock, webhook_url=None, rate_limit_per_minute=30)
    async with run_sandboxes([sandbox]) as running:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as http:
            yield http


async def test_rate_limit_counts_down_then_refuses(
    limited: httpx.AsyncClient, clock: ManualClock
) -> None:
    window_end = (int(clock.now().timestamp()) // 10 + 1) * 10
    remaining = []
    for _ in range(5):
        response = await limited.get("/admins")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Reset"] == str(window_end)
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = await limited.get("/admins")
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    body = refused.json()
    assert body["type"] == "error.list"
    assert body["request_id"]
    assert body["errors"][0]["code"] == "rate_limit_exceeded"

    clock.advance(10)  # the next window
    again = await limited.get("/admins")
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "4"


async def test_unauthenticated_requests_do_not_spend_the_budget(
    limited: httpx.AsyncClient,
) -> None:
    for _ in range(10):
        response = await limited.get("/admins", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert "X-RateLimit-Remaining" not in response.headers
    ok = await limited.get("/admins")
    assert ok.headers["X-RateLimit-Remaining"] == "4"


@pytest.mark.parametrize(
    ("version", "status"),
    [("2.14", 200), ("2.11", 200), ("Unstable", 200), ("9.9", 400)],
    ids=["current", "older", "unstable", "unknown"],
)
async def test_intercom_version_header(intercom: IntercomEnv, version: str, status: int) -> None:
    response = await intercom.http.get("/admins", headers={"Intercom-Version": version})
    assert response.status_code == status
    if status == 400:
        assert response.json()["type"] == "error.list"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer wrong", 401), (f"Basic {TOKEN}", 401), (f"Bearer {TOKEN}", 200)],
    ids=["missing", "wrong-token", "wrong-scheme", "valid"],
)
async def test_bearer_auth(intercom: IntercomEnv, authorization: str | None, status: int) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=intercom.url, headers=headers) as http:
        response = await http.get("/me")
    assert response.status_code == status


async def test_unknown_path_is_an_error_list(intercom: IntercomEnv) -> None:
    response = await intercom.http.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["errors"] == [{"code": "not_found", "message": "Resource Not Found"}]


async def test_injected_faults_use_intercom_error_bodies(intercom: IntercomEnv) -> None:
    profile = FaultProfile(burst_429_every=1, burst_429_length=1, error_rate=1.0)
    applied = await intercom.http.put("/_sandbox/faults", json=profile.model_dump(mode="json"))
    assert applied.status_code == 200
    first, second = await intercom.http.get("/admins"), await intercom.http.get("/admins")
    assert first.status_code in {500, 502, 503}
    assert first.json()["type"] == "error.list"
    assert second.status_code == 429
    assert second.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert second.headers["X-RateLimit-Remaining"] == "0"


async def test_a_minute_budget_splits_into_ten_second_windows_rounded_down(
    clock: ManualClock,
) -> None:
    """ "Rate Limiting": the minute's budget is spread evenly over 10-second windows and a
    refusal says "Exceeded rate limit of N in 10_seconds". Intercom's pages round 1,000 a
    minute to 167 (2.17) or 166 (unversioned); the sandbox keeps the harsher 166."""
    sandbox = make_sandbox(clock=clock, webhook_url=None, rate_limit_per_minute=1000)
    async with run_sandboxes([sandbox]) as running:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as http:
            clock.advance(10 - clock.now().timestamp() % 10)  # a window's start
            answers = [await http.get("/admins") for _ in range(167)]
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"166"}
    assert [a.status_code for a in answers[-2:]] == [200, 429]
    assert answers[-1].json()["errors"][0] == {
        "code": "rate_limit_exceeded",
        "message": "Exceeded rate limit of 166 in 10_seconds",
    }
