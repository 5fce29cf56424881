"""Ambiguous writes on the Salesforce sandbox: the record is created, the answer is lost; the
OAuth token exchange and CometD are never ambiguous (they change no record)."""

from __future__ import annotations

import httpx
import pytest

from tests.sandboxes.salesforce.conftest import (
    API,
    SalesforceEnv,
    StartSandbox,
    refresh_token_grant,
)


async def _ambiguous(env: SalesforceEnv, mode: str) -> None:
    profile = {"ambiguous_write_rate": 1.0, "ambiguous_modes": [mode], "ambiguous_delay_s": 30}
    assert (await env.http.put("/_sandbox/faults", json=profile)).status_code == 200


@pytest.mark.parametrize("mode", ["5xx", "reset", "timeout"])
async def test_a_create_lands_though_its_answer_is_lost(
    start_sandbox: StartSandbox, mode: str
) -> None:
    async with start_sandbox() as env:
        await _ambiguous(env, mode)
        try:
            answer = await env.http.post(
                f"{API}/sobjects/Case", json={"Subject": f"Acme {mode}"}, timeout=0.3
            )
        except (httpx.RemoteProtocolError, httpx.ReadTimeout):
            answer = None
        assert answer is None or answer.status_code >= 500
        assert len(env.sandbox.org.store.find_by("Case", "Subject", f"Acme {mode}")) == 1
        state = (await env.http.get("/_sandbox/state")).json()["faults"]
        assert state["ambiguous_by_mode"] == {mode: 1}
        # A token exchange is a POST that changes no record: never ambiguous.
        assert (await refresh_token_grant(env.url, env.config))["access_token"]
        assert (await env.http.get(f"{API}/limits")).status_code == 200
        assert (await env.http.get("/_sandbox/state")).json()["faults"]["ambiguous_writes"] == 1
