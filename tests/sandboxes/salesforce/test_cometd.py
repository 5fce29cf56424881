"""Change events over CometD, driven by the real, unmodified ``aiosfstream-ng`` client.

aiosfstream hard-codes Salesforce's token URLs, so the test subclasses its refresh token
authenticator and overrides ``_token_url`` (the documented way to point it elsewhere); the
client is built with ``connection_timeout=0`` because it crashes after a failed
``/meta/connect`` otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiosfstream_ng.auth import RefreshTokenAuthenticator
from aiosfstream_ng.client import Client
from aiosfstream_ng.replay import ReplayMarker, ReplayOption

from tests.sandboxes.salesforce.conftest import SalesforceEnv, StartSandbox


class SandboxAuthenticator(RefreshTokenAuthenticator):
    def __init__(self, env: SalesforceEnv) -> None:
        super().__init__(
            consumer_key=env.config.consumer_key,
            consumer_secret=env.config.consumer_secret,
            refresh_token=env.config.refresh_token,
        )
        self.token_url = f"{env.url}/services/oauth2/token"

    @property
    def _token_url(self) -> str:
        return self.token_url


def streaming_client(env: SalesforceEnv, replay: Any = ReplayOption.NEW_EVENTS) -> Client:
    return Client(SandboxAuthenticator(env), replay=replay, connection_timeout=0)


async def receive(client: Client, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(client.receive(), 10) for _ in range(count)]


async def test_aiosfstream_receives_rest_changes_and_resumes_from_a_stored_replay_id(
    env: SalesforceEnv,
) -> None:
    storage: dict[str, ReplayMarker] = {}
    client = streaming_client(env, storage)
    await client.open()
    await client.subscribe("/data/CaseChangeEvent")
    case_id = await env.create(
        "Case", {"Subject": "Streamed"}, **{"Sforce-Call-Options": "client=deskstream"}
    )
    await env.update("Case", case_id, {"Status": "Working"})
    await env.create("Contact", {"LastName": "Not on this channel"})

    created, updated = await receive(client, 2)
    await client.close()

    assert created["channel"] == "/data/CaseChangeEvent"
    header = created["data"]["payload"]["ChangeEventHeader"]
    assert header["entityName"] == "Case"
    assert header["recordIds"] == [case_id]
    assert header["changeType"] == "CREATE"
    assert header["changeOrigin"] == "com/salesforce/api/rest/59.0;client=deskstream"
    assert created["data"]["payload"]["Subject"] == "Streamed"
    assert created["data"]["schema"] == env.sandbox.org.bus.layouts["Case"].schema_id
    assert updated["data"]["payload"]["ChangeEventHeader"]["changeOrigin"] == (
        "com/salesforce/api/rest/59.0"
    )
    assert storage["/data/CaseChangeEvent"].replay_id == updated["data"]["event"]["replayId"]

    # While the client is away: two more changes. A new client with the stored replay id
    # gets exactly those, not the two it already processed.
    await env.update("Case", case_id, {"Subject": "Missed 1"})
    await env.update("Case", case_id, {"Subject": "Missed 2"})
    resumed = streaming_client(env, storage)
    await resumed.open()
    await resumed.subscribe("/data/CaseChangeEvent")
    missed = await receive(resumed, 2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(resumed.receive(), 2.0)
    await resumed.close()

    assert [m["data"]["payload"]["Subject"] for m in missed] == ["Missed 1", "Missed 2"]
    ids = [m["data"]["event"]["replayId"] for m in (created, updated, *missed)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4


async def test_replay_all_retained_and_the_all_changes_channel(env: SalesforceEnv) -> None:
    contact_id = await env.create("Contact", {"FirstName": "Ada", "LastName": "Lovelace"})
    case_id = await env.create("Case", {"Subject": "Both", "ContactId": contact_id})
    await env.update("Contact", contact_id, {"FirstName": "Augusta", "Email": None})

    client = streaming_client(env, ReplayOption.ALL_EVENTS)
    await client.open()
    await client.subscribe("/data/ChangeEvents")
    messages = await receive(client, 3)
    await client.close()

    payloads = [m["data"]["payload"] for m in messages]
    assert [
        (p["ChangeEventHeader"]["entityName"], p["ChangeEventHeader"]["changeType"])
        for p in payloads
    ] == [("Contact", "CREATE"), ("Case", "CREATE"), ("Contact", "UPDATE")]
    assert payloads[0]["Name"] == {"FirstName": "Ada", "LastName": "Lovelace"}
    assert payloads[1]["ContactId"] == contact_id
    assert payloads[1]["Status"] == "New"
    update = payloads[2]
    assert update["ChangeEventHeader"]["changedFields"] == ["Name.FirstName", "LastModifiedDate"]
    # nulledFields and diffFields are Pub/Sub API header fields only.
    assert "nulledFields" not in update["ChangeEventHeader"]
    # Over CometD only changed fields appear; unchanged ones are left out.
    assert update["Name"] == {"FirstName": "Augusta"}
    assert "Email" not in update
    assert "LastName" not in update
    assert update["LastModifiedDate"] == "2025-03-01T09:00:00.000Z"
    assert {m["channel"] for m in messages} == {"/data/ChangeEvents"}
    assert case_id in payloads[1]["ChangeEventHeader"]["recordIds"]


async def bayeux(env: SalesforceEnv, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await env.http.post("/cometd/59.0", json=messages)
    body = response.json()
    assert isinstance(body, list)
    return body


async def handshake(env: SalesforceEnv) -> str:
    [reply] = await bayeux(
        env,
        [
            {
                "channel": "/meta/handshake",
                "id": "1",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
            }
        ],
    )
    assert reply["successful"] is True
    assert reply["supportedConnectionTypes"] == ["long-polling"]
    client_id = reply["clientId"]
    assert isinstance(client_id, str)
    return client_id


@pytest.mark.parametrize(
    ("channel", "replay", "error"),
    [
        (
            "/data/CaseChangeEvent",
            12345,
            "400::The replayId {12345} you provided was invalid.  "
            "Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.",
        ),
        (
            "/data/AccountChangeEvent",
            -1,
            "400::The channel you requested to subscribe to does "
            "not exist {/data/AccountChangeEvent}",
        ),
        # CaseComment is not on "Change Event Object Support": the channel does not exist
        # (Streaming API Error Codes: 400 "The channel you requested to subscribe to does
        # not exist {channel_name}").
        (
            "/data/CaseCommentChangeEvent",
            -1,
            "400::The channel you requested to subscribe to does "
            "not exist {/data/CaseCommentChangeEvent}",
        ),
    ],
    ids=["unknown-replay-id", "unknown-channel", "unsupported-object"],
)
async def test_subscribe_errors(env: SalesforceEnv, channel: str, replay: int, error: str) -> None:
    client_id = await handshake(env)

    [reply] = await bayeux(
        env,
        [
            {
                "channel": "/meta/subscribe",
                "id": "2",
                "clientId": client_id,
                "subscription": channel,
                "ext": {"replay": {channel: replay}},
            }
        ],
    )

    assert reply["successful"] is False
    assert reply["error"] == error


async def test_replay_ids_expire_after_72_hours(start_sandbox: StartSandbox) -> None:
    async with start_sandbox(session_timeout_s=100 * 3600) as env:
        await env.create("Case", {"Subject": "old news"})
        replay_id = env.sandbox.org.bus.latest_replay_id
        subscribe = {
            "channel": "/meta/subscribe",
            "id": "2",
            "subscription": "/data/CaseChangeEvent",
            "ext": {"replay": {"/data/CaseChangeEvent": replay_id}},
        }

        client_id = await handshake(env)
        [fresh] = await bayeux(env, [{**subscribe, "clientId": client_id}])
        env.clock.advance(72 * 3600 + 1)
        client_id = await handshake(env)
        [expired] = await bayeux(env, [{**subscribe, "clientId": client_id}])

    assert fresh["successful"] is True
    assert expired["successful"] is False
    assert expired["error"].startswith(f"400::The replayId {{{replay_id}}}")


async def test_unknown_client_is_told_to_handshake_and_bad_token_is_401(env: SalesforceEnv) -> None:
    [reply] = await bayeux(
        env,
        [
            {
                "channel": "/meta/connect",
                "id": "3",
                "clientId": "nope",
                "connectionType": "long-polling",
            }
        ],
    )
    assert reply["error"] == "403::Unknown client"
    assert reply["advice"]["reconnect"] == "handshake"

    async with httpx.AsyncClient(base_url=env.url) as anonymous:
        response = await anonymous.post(
            "/cometd/59.0",
            json=[{"channel": "/meta/handshake", "id": "1"}],
            headers={"Authorization": "Bearer expired"},
        )
    assert response.status_code == 401
    assert response.json()[0]["error"] == "403::Handshake denied"


async def test_gap_events_carry_only_the_header(start_sandbox: StartSandbox) -> None:
    async with start_sandbox(faults="none") as env:
        case_id = await env.create("Case", {"Subject": "gap"})
        async with httpx.AsyncClient(base_url=env.url) as admin:
            published = await admin.post(
                "/_sandbox/salesforce/gap",
                json={"entity": "Case", "changeType": "GAP_UPDATE", "recordIds": [case_id]},
            )
            overflow = await admin.post("/_sandbox/salesforce/gap", json={"entity": "Case"})
        env.sandbox.context.set_faults(
            env.sandbox.context.faults.model_copy(update={"cdc_gap_rate": 1.0})
        )
        await env.update("Case", case_id, {"Subject": "lost detail"})

        client = streaming_client(env, ReplayOption.ALL_EVENTS)
        await client.open()
        await client.subscribe("/data/CaseChangeEvent")
        messages = await receive(client, 4)
        await client.close()

    assert published.status_code == overflow.status_code == 200
    kinds = [m["data"]["payload"]["ChangeEventHeader"]["changeType"] for m in messages]
    assert kinds == ["CREATE", "GAP_UPDATE", "GAP_OVERFLOW", "GAP_UPDATE"]
    for message in messages[1:]:
        assert list(message["data"]["payload"]) == ["ChangeEventHeader"]
        assert message["data"]["payload"]["ChangeEventHeader"]["changedFields"] == []
    assert messages[1]["data"]["payload"]["ChangeEventHeader"]["recordIds"] == [case_id]
