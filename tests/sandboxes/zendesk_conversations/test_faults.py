"""Injected faults look like Sunshine's own errors."""

from __future__ import annotations

import httpx
import pytest

from sandboxes.zendesk_conversations import SunshineSandboxConfig
from tests.sandboxes.zendesk_conversations.harness import Harness, serve_sandbox


async def test_injected_server_errors_use_the_platform_error_shape(sunshine: Harness) -> None:
    applied = await sunshine.admin.put(
        "/_sandbox/faults", json={"error_rate": 1.0, "error_statuses": [503]}
    )
    assert applied.status_code == 200
    response = await sunshine.api.get("/users/anyone")
    assert response.status_code == 503
    [error] = response.json()["errors"]
    assert set(error) == {"code", "title"}
    # Admin endpoints are never faulted.
    assert (await sunshine.admin.get("/_sandbox/snapshot")).status_code == 200


async def test_injected_429_has_no_retry_after_unless_configured(sunshine: Harness) -> None:
    await sunshine.admin.put("/_sandbox/faults", json={"burst_429_every": 1, "burst_429_length": 1})
    statuses = [(await sunshine.api.get("/users/anyone")) for _ in range(2)]
    assert [r.status_code for r in statuses] == [404, 429]
    limited = statuses[1]
    assert limited.json() == {
        "errors": [{"code": "too_many_requests", "title": "Rate limit exceeded"}]
    }
    assert "Retry-After" not in limited.headers

    async with serve_sandbox(config=SunshineSandboxConfig(send_retry_after=True)) as harness:
        await harness.admin.put(
            "/_sandbox/faults",
            json={"burst_429_every": 1, "burst_429_length": 1, "burst_429_retry_after_s": 2.5},
        )
        await harness.api.get("/users/anyone")
        limited = await harness.api.get("/users/anyone")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"


async def test_ambiguous_writes_land_though_the_answer_is_lost(sunshine: Harness) -> None:
    profile = {"ambiguous_write_rate": 1.0, "ambiguous_modes": ["reset"]}
    assert (await sunshine.admin.put("/_sandbox/faults", json=profile)).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        await sunshine.api.post("/users", json={"externalId": "ambiguous-1"})
    found = await sunshine.api.get("/users/ambiguous-1")  # a read: never ambiguous
    assert found.status_code == 200
    assert found.json()["user"]["externalId"] == "ambiguous-1"
    state = (await sunshine.admin.get("/_sandbox/state")).json()["faults"]
    assert state["ambiguous_by_mode"] == {"reset": 1}
