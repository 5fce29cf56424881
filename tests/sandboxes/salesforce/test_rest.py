"""REST: sObject CRUD, upsert by external id, describe, and the record rules that guard them."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from sandboxes.salesforce.ids import normalize_id, to_18
from tests.sandboxes.salesforce.conftest import API, SalesforceEnv

ID_18 = re.compile(r"^[0-9A-Za-z]{18}$")


@pytest.mark.parametrize(
    ("sobject", "body", "prefix"),
    [
        ("Case", {"Subject": "Printer on fire"}, "500"),
        ("Contact", {"LastName": "Lovelace"}, "003"),
    ],
    ids=["case", "contact"],
)
async def test_create_returns_201_and_a_real_looking_18_char_id(
    env: SalesforceEnv, sobject: str, body: dict[str, Any], prefix: str
) -> None:
    response = await env.http.post(f"{API}/sobjects/{sobject}", json=body)

    assert response.status_code == 201
    created = response.json()
    assert created == {"id": created["id"], "success": True, "errors": []}
    assert ID_18.match(created["id"])
    assert created["id"].startswith(prefix)
    assert normalize_id(created["id"]) == created["id"], "checksum suffix must be valid"


async def test_get_returns_attributes_defaults_and_salesforce_datetimes(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "Broken", "Origin": "Web"})

    record = (await env.http.get(f"{API}/sobjects/Case/{case_id}")).json()

    assert record["attributes"] == {"type": "Case", "url": f"{API}/sobjects/Case/{case_id}"}
    assert record["Id"] == case_id
    assert record["Status"] == "New"
    assert record["Priority"] == "Medium"
    assert record["IsClosed"] is False
    assert record["ClosedDate"] is None
    assert re.match(r"^\d{8}$", record["CaseNumber"])
    assert record["CreatedDate"] == "2025-03-01T09:00:00.000+0000"
    assert record["OwnerId"] == env.sandbox.org.user_id


async def test_fifteen_char_id_and_fields_parameter(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "Short id"})

    response = await env.http.get(f"{API}/sobjects/Case/{case_id[:15]}?fields=Subject,Status")

    assert response.json() == {
        "attributes": {"type": "Case", "url": f"{API}/sobjects/Case/{case_id}"},
        "Subject": "Short id",
        "Status": "New",
    }


def test_to_18_matches_the_documented_example() -> None:
    assert to_18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert normalize_id("001a0000006vm9riac") == "001A0000006Vm9rIAC"
    assert normalize_id("001A0000006Vm9rXXX") is None


async def test_update_is_204_and_closing_sets_closed_fields(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "Will close"})
    env.clock.advance(60)

    await env.update("Case", case_id, {"Status": "Closed"})

    record = (await env.http.get(f"{API}/sobjects/Case/{case_id}")).json()
    assert record["IsClosed"] is True
    assert record["ClosedDate"] == record["LastModifiedDate"] == "2025-03-01T09:01:00.000+0000"


async def test_delete_then_get_is_entity_is_deleted(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "Gone"})

    assert (await env.http.delete(f"{API}/sobjects/Case/{case_id}")).status_code == 204
    response = await env.http.get(f"{API}/sobjects/Case/{case_id}")

    assert response.status_code == 404
    assert response.json() == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]


async def test_upsert_creates_then_updates_then_reports_multiple_matches(
    env: SalesforceEnv,
) -> None:
    url = f"{API}/sobjects/Case/Deskstream_Link_Id__c/link-1"

    created = await env.http.patch(url, json={"Subject": "first"})
    updated = await env.http.patch(url, json={"Subject": "second"})
    legacy = await env.http.patch(url.replace("v59.0", "v45.0"), json={"Subject": "third"})

    assert created.status_code == 201
    case_id = created.json()["id"]
    assert created.json() == {"id": case_id, "success": True, "errors": [], "created": True}
    assert updated.status_code == 200
    assert updated.json() == {"id": case_id, "success": True, "errors": [], "created": False}
    assert legacy.status_code == 204, "before API 46.0 an updating upsert has no body"
    record = (await env.http.get(url)).json()
    assert record["Subject"] == "third"
    assert record["Deskstream_Link_Id__c"] == "link-1"

    await env.create("Case", {"Subject": "duplicate", "Deskstream_Link_Id__c": "LINK-1"})
    multiple = await env.http.patch(url, json={"Subject": "which one?"})
    assert multiple.status_code == 300
    assert sorted(multiple.json()) == sorted(
        f"{API}/sobjects/Case/{r['Id']}" for r in env.sandbox.org.store.records["Case"].values()
    )


async def test_upsert_before_api_46_creates_without_the_created_flag(
    env: SalesforceEnv,
) -> None:
    # dome_upsert: "The created parameter is present in the response in API version 46.0 and
    # later. It doesn't appear in earlier versions."
    url = f"{API}/sobjects/Case/Deskstream_Link_Id__c/link-45".replace("v59.0", "v45.0")

    created = await env.http.patch(url, json={"Subject": "old client"})

    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "success": True, "errors": []}


@pytest.mark.parametrize("named", ["Deskstream_Link_Id__c", "Id"])
async def test_upsert_refuses_a_body_naming_the_external_id_or_id(
    env: SalesforceEnv, named: str
) -> None:
    # "Do not specify Id or an external ID field in the request body or an error is generated."
    url = f"{API}/sobjects/Case/Deskstream_Link_Id__c/link-2"
    value = "link-2" if named != "Id" else "500000000000000AAA"

    response = await env.http.patch(url, json={"Subject": "x", named: value})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert response.json()[0]["fields"] == [named]
    assert not env.sandbox.org.store.find_by("Case", "Deskstream_Link_Id__c", "link-2")


async def test_upsert_on_a_field_that_is_not_an_external_id_is_404(env: SalesforceEnv) -> None:
    response = await env.http.patch(f"{API}/sobjects/Case/Subject/abc", json={"Status": "New"})

    assert response.status_code == 404
    assert response.json() == [
        {
            "message": "Provided external ID field does not exist or is not accessible: Subject",
            "errorCode": "NOT_FOUND",
        }
    ]


@pytest.mark.parametrize(
    ("sobject", "body", "code", "fields"),
    [
        ("Contact", {"FirstName": "Ada"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ("Case", {"Status": "Bogus"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
        ("Case", {"Nope__c": 1}, "INVALID_FIELD", None),
        ("Case", {"CaseNumber": "1"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["CaseNumber"]),
        ("Contact", {"LastName": "X", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
        ("Case", {"ContactId": "not-an-id"}, "MALFORMED_ID", ["ContactId"]),
        ("Case", {"ContactId": "500000000000000AAA"}, "FIELD_INTEGRITY_EXCEPTION", ["ContactId"]),
        ("Case", {"ContactId": "0035g0000000000AAA"}, "INVALID_CROSS_REFERENCE_KEY", ["ContactId"]),
        # 1,334 euro signs are 4,002 bytes: CommentBody's limit counts bytes.
        ("CaseComment", {"CommentBody": "€" * 1334}, "STRING_TOO_LONG", ["CommentBody"]),
    ],
    ids=[
        "required-missing",
        "restricted-picklist",
        "unknown-field",
        "read-only-field",
        "bad-email",
        "malformed-reference",
        "reference-of-wrong-type",
        "reference-to-nothing",
        "comment-body-over-4000-bytes",
    ],
)
async def test_create_rejects_invalid_records_with_salesforce_errors(
    env: SalesforceEnv, sobject: str, body: dict[str, Any], code: str, fields: list[str] | None
) -> None:
    if sobject == "CaseComment":
        body = {**body, "ParentId": await env.create("Case", {"Subject": "parent"})}

    response = await env.http.post(f"{API}/sobjects/{sobject}", json=body)

    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code
    assert error.get("fields") == fields
    assert env.sandbox.org.store.records[sobject] == {}, "nothing is stored"


async def test_case_comment_belongs_to_a_case(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "parent"})
    comment_id = await env.create(
        "CaseComment", {"ParentId": case_id, "CommentBody": "Hello", "IsPublished": True}
    )
    assert comment_id.startswith("00a")

    contact_id = await env.create("Contact", {"LastName": "Not a case"})
    response = await env.http.post(
        f"{API}/sobjects/CaseComment", json={"ParentId": contact_id, "CommentBody": "x"}
    )
    assert response.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


async def test_describe_lists_picklists_and_the_external_id(env: SalesforceEnv) -> None:
    described = (await env.http.get(f"{API}/sobjects/Case/describe")).json()

    fields = {f["name"]: f for f in described["fields"]}
    assert described["keyPrefix"] == "500"
    picklists = {
        name: [v["value"] for v in fields[name]["picklistValues"]]
        for name in ("Status", "Priority", "Origin")
    }
    assert picklists == {
        "Status": ["New", "Working", "Escalated", "Closed"],
        "Priority": ["High", "Medium", "Low"],
        "Origin": ["Phone", "Email", "Web"],
    }
    link = fields["Deskstream_Link_Id__c"]
    assert (link["externalId"], link["idLookup"], link["custom"]) == (True, True, True)
    assert fields["CaseNumber"]["createable"] is False


async def test_content_version_publishes_a_file_on_a_case(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "with attachment"})
    data = b"%PDF-1.4 fake pdf bytes"

    version_id = await env.create(
        "ContentVersion",
        {
            "PathOnClient": "invoice.pdf",
            "VersionData": base64.b64encode(data).decode(),
            "FirstPublishLocationId": case_id,
        },
    )

    version = (await env.http.get(f"{API}/sobjects/ContentVersion/{version_id}")).json()
    assert version_id.startswith("068")
    assert (version["Title"], version["FileType"], version["ContentSize"]) == (
        "invoice",
        "PDF",
        len(data),
    )
    assert version["VersionData"] == f"{API}/sobjects/ContentVersion/{version_id}/VersionData"
    blob = await env.http.get(version["VersionData"])
    assert blob.content == data
    [link] = env.sandbox.org.store.records["ContentDocumentLink"].values()
    assert (link["LinkedEntityId"], link["ContentDocumentId"]) == (
        case_id,
        version["ContentDocumentId"],
    )

    again = await env.http.post(
        f"{API}/sobjects/ContentDocumentLink",
        json={"ContentDocumentId": version["ContentDocumentId"], "LinkedEntityId": case_id},
    )
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "DUPLICATE_VALUE"


async def test_unknown_sobject_and_unknown_path_are_not_found(env: SalesforceEnv) -> None:
    for path in (f"{API}/sobjects/Widget/describe", f"{API}/nothing/here"):
        response = await env.http.get(path)
        assert response.status_code == 404
        assert response.json() == [
            {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
        ]


async def test_admin_snapshot_and_reset(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "snapshotted"})
    org_id = env.org_id

    snapshot = (await env.http.get("/_sandbox/snapshot")).json()
    reset = await env.http.post("/_sandbox/reset")

    assert [r["Id"] for r in snapshot["records"]["Case"]] == [case_id]
    assert snapshot["org"]["org_id"] == org_id
    assert snapshot["cdc"]["retained"] == 1
    assert env.sandbox.describe()["pubsub"] == env.sandbox.pubsub_target
    assert reset.status_code == 200
    assert env.sandbox.org.store.records["Case"] == {}
    assert env.sandbox.org.org_id == org_id, "a reset org keeps its seeded identity"
    assert (await env.http.get(f"{API}/limits")).status_code == 401, "sessions are forgotten"
