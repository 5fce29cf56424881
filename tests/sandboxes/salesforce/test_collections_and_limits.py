"""sObject Collections (allOrNone, the 200-record cap, upsert by external id) and the daily API
allowance."""

from __future__ import annotations

from typing import Any

from tests.sandboxes.salesforce.conftest import API, SalesforceEnv, StartSandbox

LINK = "Deskstream_Link_Id__c"


def _case(subject: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Case"}, "Subject": subject, **fields}


async def test_collection_create_reports_each_record(env: SalesforceEnv) -> None:
    records = [_case("one"), _case("bad", Priority="Urgent!"), _case("three")]

    response = await env.http.post(
        f"{API}/composite/sobjects", json={"allOrNone": False, "records": records}
    )

    assert response.status_code == 200
    first, second, third = response.json()
    assert first["success"]
    assert third["success"]
    assert first["errors"] == third["errors"] == []
    assert second == {
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "Priority: bad value for restricted picklist field: Urgent!",
                "fields": ["Priority"],
            }
        ],
    }
    assert set(env.sandbox.org.store.records["Case"]) == {first["id"], third["id"]}


async def test_collection_all_or_none_rolls_everything_back(env: SalesforceEnv) -> None:
    records = [_case("one"), {"attributes": {"type": "Contact"}, "FirstName": "No last name"}]
    before = env.sandbox.org.bus.latest_replay_id

    response = await env.http.post(
        f"{API}/composite/sobjects", json={"allOrNone": True, "records": records}
    )

    rolled_back, failed = response.json()
    assert rolled_back["success"] is False
    assert rolled_back["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert failed["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert env.sandbox.org.store.records["Case"] == {}
    assert env.sandbox.org.bus.latest_replay_id == before, "a rolled back call publishes nothing"


async def test_collection_update_and_delete(env: SalesforceEnv) -> None:
    ids = [await env.create("Case", {"Subject": f"case {i}"}) for i in range(2)]

    updated = await env.http.patch(
        f"{API}/composite/sobjects",
        json={"records": [_case("renamed", Id=ids[0]), _case("renamed", Id=ids[1])]},
    )
    deleted = await env.http.delete(f"{API}/composite/sobjects", params={"ids": ",".join(ids)})

    assert [r["id"] for r in updated.json()] == ids
    assert all(r["success"] for r in updated.json() + deleted.json())
    assert env.sandbox.org.store.records["Case"] == {}


async def test_collections_refuse_more_than_200_records(env: SalesforceEnv) -> None:
    records = [_case(f"case {i}") for i in range(201)]

    response = await env.http.post(f"{API}/composite/sobjects", json={"records": records})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


async def test_every_response_carries_the_limit_header(env: SalesforceEnv) -> None:
    first = await env.http.get(f"{API}/sobjects/Case/describe")
    second = await env.http.get(f"{API}/sobjects/Case/500000000000000AAA")
    limit = env.config.daily_api_limit

    assert first.headers["Sforce-Limit-Info"] == f"api-usage=1/{limit}"
    assert second.status_code == 404
    assert second.headers["Sforce-Limit-Info"] == f"api-usage=2/{limit}"
    limits = (await env.http.get(f"{API}/limits")).json()
    assert limits["DailyApiRequests"] == {"Max": limit, "Remaining": limit - 3}


async def test_daily_limit_is_a_403_until_the_rolling_day_passes(
    start_sandbox: StartSandbox,
) -> None:
    async with start_sandbox(daily_api_limit=3, session_timeout_s=48 * 3600) as env:
        statuses = [(await env.http.get(f"{API}/limits")).status_code for _ in range(4)]
        refused = await env.http.get(f"{API}/limits")
        env.clock.advance(24 * 3600 + 1)
        later = await env.http.get(f"{API}/limits")

    assert statuses == [200, 200, 200, 403]
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    assert later.status_code == 200
    assert later.headers["Sforce-Limit-Info"] == "api-usage=1/3"


async def test_injected_faults_look_like_salesforce(start_sandbox: StartSandbox) -> None:
    async with start_sandbox(faults="outage") as env:
        env.clock.advance(31)  # the "outage" profile is down from 30 s to 90 s
        response = await env.http.get(f"{API}/limits")

    assert response.status_code == 503
    assert response.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert "Sforce-Limit-Info" in response.headers


async def test_collection_upsert_answers_upsert_results_in_order(env: SalesforceEnv) -> None:
    existing = await env.create("Case", {"Subject": "old", LINK: "link-1"})
    records = [
        _case("updated", **{LINK: "link-1"}),
        _case("new", **{LINK: "link-2"}),
        _case("no link"),
        {"attributes": {"type": "Contact"}, "LastName": "Other type", LINK: "link-3"},
    ]

    response = await env.http.patch(
        f"{API}/composite/sobjects/Case/{LINK}", json={"allOrNone": False, "records": records}
    )

    assert response.status_code == 200
    updated, created, missing, wrong_type = response.json()
    assert updated == {"id": existing, "success": True, "errors": [], "created": False}
    assert created["success"]
    assert created["created"] is True
    assert missing["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert missing["created"] is False
    assert wrong_type["errors"][0]["statusCode"] == "INVALID_TYPE"
    cases = env.sandbox.org.store.records["Case"]
    assert cases[existing]["Subject"] == "updated"
    assert cases[created["id"]][LINK] == "link-2"


async def test_collection_upsert_refuses_duplicates_ids_and_old_versions(
    env: SalesforceEnv,
) -> None:
    for i in range(2):
        await env.create("Case", {"Subject": f"dup {i}", LINK: "link-dup"})

    duplicate, with_id = (
        await env.http.patch(
            f"{API}/composite/sobjects/Case/{LINK}",
            json={
                "records": [
                    _case("x", **{LINK: "link-dup"}),
                    _case("y", Id="500000000000000AAA", **{LINK: "link-9"}),
                ]
            },
        )
    ).json()
    old_version = await env.http.patch(
        f"/services/data/v45.0/composite/sobjects/Case/{LINK}", json={"records": []}
    )
    not_external = await env.http.patch(f"{API}/composite/sobjects/Case/Subject", json={})

    assert duplicate["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert with_id["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert old_version.status_code == 404
    assert not_external.status_code == 404


async def test_collection_upsert_all_or_none_rolls_back_and_drops_new_ids(
    env: SalesforceEnv,
) -> None:
    existing = await env.create("Case", {"Subject": "old", LINK: "link-1"})
    records = [
        _case("updated", **{LINK: "link-1"}),
        _case("new", **{LINK: "link-2"}),
        _case("bad", Priority="Urgent!", **{LINK: "link-3"}),
    ]

    response = await env.http.patch(
        f"{API}/composite/sobjects/Case/{LINK}", json={"allOrNone": True, "records": records}
    )

    updated, created, bad = response.json()
    assert updated["id"] == existing
    assert "id" not in created
    assert {updated["created"], created["created"], bad["created"]} == {False}
    assert updated["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert list(env.sandbox.org.store.records["Case"]) == [existing]
    assert env.sandbox.org.store.records["Case"][existing]["Subject"] == "old"
