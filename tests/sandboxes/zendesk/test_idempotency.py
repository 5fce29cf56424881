"""``Idempotency-Key`` on ticket create: miss, hit, conflict, and expiry after two hours."""

from __future__ import annotations

import httpx
import pytest

from tests.sandboxes.zendesk.conftest import ZendeskEnv

BODY = {"ticket": {"subject": "Printer offline", "comment": {"body": "Restarting does not help"}}}


async def create(env: ZendeskEnv, key: str, body: object = BODY):  # type: ignore[no-untyped-def]
    return await env.http.post("/api/v2/tickets.json", json=body, headers={"Idempotency-Key": key})


async def test_miss_then_hit_replays_the_same_response(zendesk: ZendeskEnv) -> None:
    first = await create(zendesk, "key-1")
    assert (first.status_code, first.headers["x-idempotency-lookup"]) == (201, "miss")
    zendesk.clock.advance(60)
    again = await create(
        zendesk,
        "key-1",
        {"ticket": {"comment": {"body": "Restarting does not help"}, "subject": "Printer offline"}},
    )
    assert (again.status_code, again.headers["x-idempotency-lookup"]) == (201, "hit")
    assert again.content == first.content
    assert again.headers["Location"] == first.headers["Location"]
    assert len(zendesk.sandbox.core.state.tickets) == 1


async def test_same_key_other_body_is_400(zendesk: ZendeskEnv) -> None:
    await create(zendesk, "key-2")
    other = await create(zendesk, "key-2", {"ticket": {"subject": "x", "comment": {"body": "y"}}})
    assert other.status_code == 400
    assert other.json() == {
        "error": "IdempotentRequestError",
        "description": "Request parameters don't match the given idempotency key",
    }
    assert len(zendesk.sandbox.core.state.tickets) == 1


async def test_key_expires_after_two_hours(zendesk: ZendeskEnv) -> None:
    first = await create(zendesk, "key-3")
    zendesk.clock.advance(2 * 3600 - 1)
    assert (await create(zendesk, "key-3")).headers["x-idempotency-lookup"] == "hit"
    zendesk.clock.advance(1)
    later = await create(zendesk, "key-3")
    assert later.headers["x-idempotency-lookup"] == "miss"
    assert later.json()["ticket"]["id"] != first.json()["ticket"]["id"]


async def test_failed_create_is_not_cached(zendesk: ZendeskEnv) -> None:
    refused = await create(zendesk, "key-4", {"ticket": {"subject": "no comment"}})
    assert refused.status_code == 422
    assert "x-idempotency-lookup" not in refused.headers
    fixed = await create(zendesk, "key-4")
    assert (fixed.status_code, fixed.headers["x-idempotency-lookup"]) == (201, "miss")


async def test_without_a_key_every_create_is_new(zendesk: ZendeskEnv) -> None:
    await zendesk.http.post("/api/v2/tickets", json=BODY)
    response = await zendesk.http.post("/api/v2/tickets", json=BODY)
    assert "x-idempotency-lookup" not in response.headers
    assert len(zendesk.sandbox.core.state.tickets) == 2


async def test_an_ambiguous_create_retried_with_its_key_is_replayed(zendesk: ZendeskEnv) -> None:
    """The create landed and its answer was lost: the retry under the same key gets the first
    answer back (``hit``) and the account holds one ticket."""
    profile = {"ambiguous_write_rate": 1.0, "ambiguous_modes": ["reset"]}
    await zendesk.http.put("/_sandbox/faults", json=profile)
    with pytest.raises(httpx.RemoteProtocolError):
        await create(zendesk, "key-5")
    await zendesk.http.put("/_sandbox/faults", json={"profile": "none"})
    again = await create(zendesk, "key-5")
    assert (again.status_code, again.headers["x-idempotency-lookup"]) == (201, "hit")
    assert len(zendesk.sandbox.core.state.tickets) == 1
    assert again.json()["ticket"]["id"] == next(iter(zendesk.sandbox.core.state.tickets))
