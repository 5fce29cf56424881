"""The REST client against the sandbox: rows, upsert by external id, sObject Collections in
calls of 200 with per-record errors, the describe inventory, 401 handling, and the
``Sforce-Call-Options`` client id arriving in the change events of our writes."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.salesforce.responses import MultipleMatchesError, NotFoundError
from schemas.errors import RateLimitedError, RetriableAPIError
from tests.connectors.salesforce.conftest import Connector
from tests.sandboxes.salesforce.conftest import SalesforceEnv

LINK = "Deskstream_Link_Id__c"


def _origin_of(env: SalesforceEnv, record_id: str) -> list[str]:
    return [
        event.header["changeOrigin"]
        for event in env.sandbox.org.bus.events
        if record_id in event.header["recordIds"]
    ]


async def test_create_get_update(env: SalesforceEnv, connector: Connector) -> None:
    async with connector.client() as client:
        case_id = await client.create("Case", {"Subject": "Printer on fire", "Priority": "High"})
        await client.update("Case", case_id, {"Status": "Working"})
        record = await client.get("Case", case_id, fields=["Subject", "Status", "Priority"])

    assert {k: record[k] for k in ("Subject", "Status", "Priority")} == {
        "Subject": "Printer on fire",
        "Status": "Working",
        "Priority": "High",
    }
    assert env.sandbox.org.store.records["Case"][case_id]["Status"] == "Working"


async def test_upsert_creates_then_updates_the_same_record(
    env: SalesforceEnv, connector: Connector
) -> None:
    async with connector.client() as client:
        first = await client.upsert("Case", LINK, "link-42", {"Subject": "first"})
        second = await client.upsert("Case", LINK, "link-42", {"Subject": "second"})

    assert (first.created, second.created) == (True, False)
    assert (first.success, second.success) == (True, True)
    assert first.id == second.id
    cases = env.sandbox.org.store.records["Case"]
    assert len(cases) == 1
    assert first.id is not None
    assert (cases[first.id]["Subject"], cases[first.id][LINK]) == ("second", "link-42")


async def test_upsert_with_several_matches_is_fatal_and_names_them(
    env: SalesforceEnv, connector: Connector
) -> None:
    ids = [await env.create("Case", {"Subject": f"dup {i}", LINK: "link-dup"}) for i in range(2)]
    async with connector.client() as client:
        with pytest.raises(MultipleMatchesError, match="merge the duplicates") as raised:
            await client.upsert("Case", LINK, "link-dup", {"Subject": "x"})

    assert sorted(url.rsplit("/", 1)[-1] for url in raised.value.urls) == sorted(ids)


async def test_a_missing_record_is_not_found(connector: Connector) -> None:
    async with connector.client() as client:
        with pytest.raises(NotFoundError, match="does not exist"):
            await client.get("Case", "500000000000000AAA")


async def test_writes_carry_our_client_id_into_change_events(
    env: SalesforceEnv, connector: Connector
) -> None:
    async with connector.client() as client:
        created = await client.create("Case", {"Subject": "ours"})
        await client.update("Case", created, {"Subject": "still ours"})
        upserted = await client.upsert("Contact", LINK, "link-7", {"LastName": "Lovelace"})
        batch = await client.update_many("Case", [{"Id": created, "Subject": "batched"}])
    theirs = await env.create("Case", {"Subject": "a person's"})

    ours = f"com/salesforce/api/rest/{connector.settings().api_version};client=deskstream"
    assert _origin_of(env, created) == [ours, ours, ours]
    assert upserted.id is not None
    assert _origin_of(env, upserted.id) == [ours]
    assert batch[0].success
    assert _origin_of(env, theirs) == ["com/salesforce/api/rest/59.0"]


async def test_an_expired_token_is_replaced_and_the_call_repeated_once(
    env: SalesforceEnv, connector: Connector
) -> None:
    async with connector.client() as client:
        await client.limits()
        old = set(env.sandbox.org.oauth.sessions)
        env.sandbox.org.oauth.expire_all()  # every token stops working, ours too
        body = await client.limits()

    assert body["DailyApiRequests"]["Max"] == env.config.daily_api_limit
    # Exactly one new token was fetched for the repeated call.
    assert len(env.sandbox.org.oauth.sessions) == 1
    assert not old & set(env.sandbox.org.oauth.sessions)


def _cases(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"Subject": f"case {i}", **fields} for i in range(count)]


async def test_collections_split_into_calls_of_200_and_keep_each_error(
    env: SalesforceEnv, connector: Connector
) -> None:
    records = _cases(250)
    for bad in (3, 210):
        records[bad]["Priority"] = "Urgent!"
    async with connector.client() as client:
        await client.limits()  # the token and a first call, outside the count
        calls, used = client.calls, env.sandbox.org.usage.used
        results = await client.create_many("Case", records)

    assert client.calls - calls == 2
    assert env.sandbox.org.usage.used - used == 2
    assert len(results) == 250
    failed = [i for i, r in enumerate(results) if not r.success]
    assert failed == [3, 210]
    error = results[210].errors[0]
    assert (error.status_code, error.fields) == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ("Priority",),
    )
    assert results[210].id is None
    stored = env.sandbox.org.store.records["Case"]
    assert len(stored) == 248
    assert stored[results[249].id or ""]["Subject"] == "case 249"


async def test_collection_upsert_creates_then_updates(
    env: SalesforceEnv, connector: Connector
) -> None:
    records = [{LINK: f"link-{i}", "Subject": f"case {i}"} for i in range(250)]
    async with connector.client() as client:
        first = await client.upsert_many("Case", LINK, records)
        records[7] = {LINK: "link-7", "Subject": "renamed"}
        records[8] = {LINK: "link-8", "Priority": "Urgent!"}
        second = await client.upsert_many("Case", LINK, records)

    assert all(r.success and r.created for r in first)
    assert [r.created for r in second if r.success] == [False] * 249
    assert [r.id for r in second[:7]] == [r.id for r in first[:7]]
    assert second[8].errors[0].status_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    stored = env.sandbox.org.store.records["Case"]
    assert len(stored) == 250
    assert stored[first[7].id or ""]["Subject"] == "renamed"


async def test_collection_update_reports_a_missing_record(
    env: SalesforceEnv, connector: Connector
) -> None:
    case_id = await env.create("Case", {"Subject": "there"})
    async with connector.client() as client:
        results = await client.update_many(
            "Case",
            [{"Id": case_id, "Subject": "updated"}, {"Id": "500000000000000AAA", "Subject": "x"}],
        )

    assert results[0].success
    assert results[1].errors[0].status_code == "INVALID_CROSS_REFERENCE_KEY"


async def test_field_inventory_comes_from_describe_and_is_cached(connector: Connector) -> None:
    async with connector.client() as client:
        fields = await client.fields("Case")
        calls = client.calls
        again = await client.fields("Case")
        assert client.calls == calls
        connector.env.clock.advance(601)
        await client.fields("Case")
        assert client.calls == calls + 1

    assert again is fields
    assert fields[LINK].external_id
    assert fields["Priority"].picklist_values == ("High", "Medium", "Low")
    assert fields["Priority"].restricted_picklist
    assert not fields["CaseNumber"].updateable


async def test_the_api_version_is_configurable(env: SalesforceEnv, connector: Connector) -> None:
    async with connector.client(connector.settings(api_version="58.0")) as client:
        case_id = await client.create("Case", {"Subject": "versioned"})
        record = await client.get("Case", case_id, fields=["Subject"])

    assert record["attributes"]["url"].startswith("/services/data/v58.0/")
    assert _origin_of(env, case_id) == ["com/salesforce/api/rest/58.0;client=deskstream"]


@pytest.mark.parametrize(
    ("profile", "error", "status"),
    [
        ({"name": "burst", "burst_429_every": 1, "burst_429_length": 9}, RateLimitedError, 403),
        ({"name": "down", "outage_windows": [[0.0, 60.0]]}, RetriableAPIError, 503),
    ],
    ids=["concurrent-request-limit", "outage"],
)
async def test_platform_trouble_is_retriable_and_never_a_daily_pause(
    env: SalesforceEnv,
    connector: Connector,
    profile: dict[str, Any],
    error: type[Exception],
    status: int,
) -> None:
    async with connector.client() as client:
        await client.limits()  # the token first: faults hit the REST API
        applied = await env.http.put("/_sandbox/faults", json=profile)
        assert applied.status_code == 200, applied.text

        async def twice() -> None:  # a burst starts after the profile's first request
            for _ in range(2):
                await client.limits()

        with pytest.raises(error) as raised:
            await twice()

    assert type(raised.value) is error
    assert getattr(raised.value, "status", None) == status
    assert client.daily.pauses == 0
