"""The sandbox as a platform of the shared base: registry, admin API, injected faults."""

from __future__ import annotations

import httpx

from sandboxes.base import run_sandboxes
from sandboxes.base.registry import load_sandbox_class
from sandboxes.zendesk import ZendeskSandbox, basic_header
from tests.sandboxes.zendesk.conftest import ZendeskEnv


def test_registered_for_the_cli() -> None:
    assert load_sandbox_class("zendesk") is ZendeskSandbox


async def test_snapshot_and_reset(zendesk: ZendeskEnv) -> None:
    await zendesk.create_ticket()
    snapshot = (await zendesk.http.get("/_sandbox/snapshot")).json()
    assert snapshot["counts"]["tickets"] == 1
    assert (
        snapshot["credentials"]["integration_user_id"] == zendesk.sandbox.core.integration_user.id
    )
    assert (await zendesk.http.post("/_sandbox/reset")).status_code == 200
    after = (await zendesk.http.get("/_sandbox/snapshot")).json()
    assert after["counts"]["tickets"] == 0
    # The seeded admin, integration user and agents remain.
    assert after["counts"]["users"] == 2 + len(zendesk.sandbox.config.agents)
    assert (await zendesk.http.get("/api/v2/users/me")).status_code == 200


async def test_injected_faults_use_zendesk_error_bodies(zendesk: ZendeskEnv) -> None:
    profile = {"burst_429_every": 1, "burst_429_length": 1, "burst_429_retry_after_s": 7}
    assert (await zendesk.http.put("/_sandbox/faults", json=profile)).status_code == 200
    ok, limited = [await zendesk.http.get("/api/v2/tickets") for _ in range(2)]
    assert ok.status_code == 200
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert limited.json()["error"] == "APIRateLimitExceeded"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    await zendesk.http.put("/_sandbox/faults", json={"error_rate": 1.0, "error_statuses": [503]})
    down = await zendesk.http.get("/api/v2/tickets")
    assert down.status_code == 503
    assert down.json()["error"] == "ServiceUnavailable"


async def test_create_classmethod_serves_with_defaults() -> None:
    sandbox = ZendeskSandbox.create(seed=3)
    async with run_sandboxes([sandbox]) as running:
        config = sandbox.config
        headers = {"Authorization": basic_header(config.integration_email, config.api_tokens[0])}
        async with httpx.AsyncClient(base_url=running.url("zendesk"), headers=headers) as http:
            response = await http.get("/api/v2/users/me.json")
    assert response.json()["user"]["email"] == config.integration_email
