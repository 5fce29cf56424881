"""The Salesforce normaliser on deliveries made the way the sources make them: change events
read from the sandbox over CometD (``raw.change_delivery`` with the record read after the
event), polled CaseComments (``raw.record_delivery``), and bodies that are not right."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base.fingerprints import fingerprint
from connectors.base.links import case_link_id, contact_link_id
from connectors.salesforce.cdc_items import DecodedChange
from connectors.salesforce.normalize import SalesforceNormaliser
from connectors.salesforce.raw import (
    change_delivery,
    current_query,
    decode_body,
    partition_key,
    record_delivery,
)
from schemas.errors import SkippableRecordError
from schemas.models import (
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Priority,
    RawDelivery,
)
from tests.connectors.salesforce.cdc_harness import Reader, open_subscriber
from tests.connectors.salesforce.sandbox_tokens import SandboxTokens
from tests.connectors.salesforce.sink_harness import (
    AGENT,
    LINK,
    Org,
    case,
    command,
    message,
    open_org,
    upsert,
)
from tests.connectors.salesforce.test_cdc_subscribers import subscribed
from tests.sandboxes.salesforce.conftest import SalesforceEnv

OTHER_USER = "005000000000000AAA"


@asynccontextmanager
async def changes(env: SalesforceEnv, channel: str) -> AsyncIterator[Reader]:
    async with open_subscriber("cometd", env, SandboxTokens.of(env)) as subscriber:
        reader = Reader(subscriber, channel, None)
        await subscribed(env, "cometd")
        try:
            yield reader
        finally:
            await reader.close()


async def delivered(org: Org, change: DecodedChange) -> RawDelivery:
    """What a source puts on the raw topic: the change and the record read after it."""
    sobject = change.header.entity
    soql = current_query(sobject, org.sink.vocabulary.select(sobject), [change.record.record_id])
    (current,) = await org.sink.client.query_all(soql)
    return change_delivery("sf", change, current=current)


def only(events: list[Envelope]) -> Envelope:
    assert len(events) == 1, events
    return events[0]


async def test_our_own_status_write_comes_back_as_an_integration_change(
    env: SalesforceEnv,
) -> None:
    async with open_org(env, service_account_id=OTHER_USER) as org:
        case_id = str((await org.sink.execute(upsert([]))).target_entity_id)
        async with changes(env, "/data/CaseChangeEvent") as reader:
            write = await org.sink.execute(
                command(
                    EntityType.CASE,
                    CommandAction.UPDATE,
                    case(status=CaseStatus.ON_HOLD),
                    target=case_id,
                    changed_fields=["status"],
                )
            )
            (change,) = await reader.changes(1)
        event = only(org.normaliser.normalise(await delivered(org, change)))

    assert event.source.actor.kind is ActorKind.INTEGRATION  # by changeOrigin alone
    assert (event.op, event.changed_fields, event.link_id) == (Op.UPDATE, ["status"], LINK)
    assert isinstance(event.data, Case)
    assert event.data.status is CaseStatus.ON_HOLD
    assert event.data.custom_fields == {"ai_handoff_reason": "customer asked for a person"}
    # the sink's fingerprint and the event's value agree: the sync stage sees its echo
    echo = fingerprint("salesforce", event.source.entity_id, "status", event.data.status.value)
    assert echo in write.fingerprints


async def test_a_persons_update_names_the_canonical_fields_it_changed(env: SalesforceEnv) -> None:
    async with open_org(env, service_account_id=OTHER_USER) as org:
        case_id = await env.create("Case", {"Subject": "Printer on fire", "Status": "New"})
        async with changes(env, "/data/CaseChangeEvent") as reader:
            await env.update(
                "Case",
                case_id,
                {"Status": "Escalated", "Priority": "Low", "AI_Handoff_Reason__c": "angry"},
            )
            (change,) = await reader.changes(1)
        delivery = await delivered(org, change)
        event = only(org.normaliser.normalise(delivery))
        again = only(org.normaliser.normalise(await delivered(org, change)))

    assert "LastModifiedDate" in change.header.changed_fields
    assert sorted(event.changed_fields) == [
        "custom_fields.ai_handoff_reason",
        "priority",
        "status",
    ]
    assert event.source.actor.kind is ActorKind.AGENT
    assert event.source.actor.id == env.sandbox.org.user_id
    assert event.link_id == case_link_id("salesforce", "sf", case_id)
    assert isinstance(event.data, Case)
    assert (event.data.status, event.data.priority) == (CaseStatus.ON_HOLD, Priority.LOW)
    assert event.data.subject == "Printer on fire"  # from the record read after the event
    assert event.source.occurred_at == change.header.commit_timestamp
    # a re-read of the same change is the same delivery, hence the same event
    assert again.event_id == event.event_id
    assert delivery.delivery_id.startswith(f"cdc:{change.header.transaction_key}:")


async def test_a_change_by_the_integration_user_is_ours_without_the_call_option(
    env: SalesforceEnv,
) -> None:
    async with open_org(env, service_account_id=env.sandbox.org.user_id) as org:
        case_id = await env.create("Case", {"Subject": "x"})
        async with changes(env, "/data/CaseChangeEvent") as reader:
            await env.update("Case", case_id, {"Status": "Closed"})
            (change,) = await reader.changes(1)
        event = only(org.normaliser.normalise(await delivered(org, change)))

    assert change.header.change_origin == "com/salesforce/api/rest/59.0"
    assert event.source.actor.kind is ActorKind.INTEGRATION


async def test_an_update_of_nothing_synced_is_no_event(env: SalesforceEnv) -> None:
    async with open_org(env) as org:
        case_id = await env.create("Case", {"Subject": "x"})
        async with changes(env, "/data/CaseChangeEvent") as reader:
            await env.update("Case", case_id, {"Description": "internal notes"})
            (change,) = await reader.changes(1)
        assert org.normaliser.normalise(await delivered(org, change)) == []


async def test_contact_create_and_delete_events(env: SalesforceEnv) -> None:
    async with open_org(env) as org, changes(env, "/data/ContactChangeEvent") as reader:
        contact_id = await env.create(
            "Contact",
            {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com"},
        )
        assert await env.http.delete(f"/services/data/v59.0/sobjects/Contact/{contact_id}")
        created, deleted = await reader.changes(2)
        events = [
            only(org.normaliser.normalise(change_delivery("sf", c))) for c in (created, deleted)
        ]

    made, gone = events
    assert made.op is Op.CREATE
    assert isinstance(made.data, Contact)
    assert (made.data.name, made.data.emails) == ("Ada Lovelace", ["ada@example.com"])
    assert sorted(made.changed_fields) == ["emails", "name"]
    expected_link = contact_link_id(
        "ada@example.com", platform="salesforce", connector_id="sf", entity_id=contact_id
    )
    assert made.link_id == expected_link
    assert (gone.op, gone.data) == (Op.DELETE, None)


async def test_a_polled_case_comment_is_a_message_of_its_cases_link(env: SalesforceEnv) -> None:
    async with open_org(env, service_account_id=OTHER_USER) as org:
        created = await org.sink.execute(upsert([message(AGENT, "Escalated.", 0, public=False)]))
        case_id = str(created.target_entity_id)
        theirs = await env.create(
            "CaseComment", {"ParentId": case_id, "CommentBody": "Called her.", "IsPublished": True}
        )
        select = ", ".join(["Id", "SystemModstamp", *org.sink.vocabulary.select("CaseComment")])
        rows = await org.sink.client.query_all(
            f"SELECT {select} FROM CaseComment ORDER BY CreatedDate, Id"  # noqa: S608
        )
        deliveries = [record_delivery("sf", "CaseComment", r, read="poll") for r in rows]
        events = {e.source.entity_id: e for d in deliveries for e in org.normaliser.normalise(d)}

    person = events[theirs]
    assert (person.op, person.source.entity_type, person.link_id) == (
        Op.CREATE,
        EntityType.MESSAGE,
        LINK,
    )
    assert isinstance(person.data, Message)
    assert (person.data.case_id, person.data.body_text, person.data.public) == (
        case_id,
        "Called her.",
        True,
    )
    assert person.data.author.kind is ActorKind.AGENT
    ours = events[created.created_ids["thread:0"]]
    assert isinstance(ours.data, Message)
    assert ours.data.public is False
    assert partition_key("sf", decode_body(deliveries[0].body)) == f"sf:case:{case_id}"
    assert deliveries[0].delivery_id == f"soql:{rows[0]['Id']}:{rows[0]['SystemModstamp']}"


async def test_a_comment_by_the_integration_user_is_ours(env: SalesforceEnv) -> None:
    async with open_org(env, service_account_id=env.sandbox.org.user_id) as org:
        created = await org.sink.execute(upsert([message(AGENT, "Escalated.", 0)]))
        select = ", ".join(["Id", "SystemModstamp", *org.sink.vocabulary.select("CaseComment")])
        (row,) = await org.sink.client.query_all(f"SELECT {select} FROM CaseComment")  # noqa: S608
        event = only(
            org.normaliser.normalise(record_delivery("sf", "CaseComment", row, read="poll"))
        )

    assert event.source.actor.kind is ActorKind.INTEGRATION
    assert event.source.entity_id == created.created_ids["thread:0"]


# -- bodies that are not right ---------------------------------------------------------------


def _raw(body: Any) -> RawDelivery:
    return RawDelivery(
        delivery_id="d-1",
        connector_id="sf",
        platform=Platform.SALESFORCE,
        received_at=datetime(2025, 3, 1, tzinfo=UTC),
        body=body if isinstance(body, bytes) else json.dumps(body).encode(),
        signature_verified=True,
    )


def _header(**more: Any) -> dict[str, Any]:
    return {
        "entityName": "Case",
        "changeType": "UPDATE",
        "changedFields": ["Status"],
        "recordIds": ["500000000000001AAA"],
        "commitTimestamp": 1740819600000,
        "commitUser": OTHER_USER,
        "changeOrigin": "",
        "transactionKey": "t-1",
        "sequenceNumber": 1,
    } | more


@pytest.fixture
def normaliser(env: SalesforceEnv) -> SalesforceNormaliser:
    from tests.connectors.salesforce.sink_harness import connector_settings

    return SalesforceNormaliser(connector_id="sf", settings=connector_settings(env))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        ({"kind": "webhook"}, "not a Salesforce delivery body"),
        ({"kind": "change", "header": _header(recordIds=[])}, "header.recordIds"),
        ({"kind": "change", "header": _header(), "fields": {"Status": "Working"}}, "no current"),
        (
            {
                "kind": "change",
                "header": _header(changeType="CREATE"),
                "fields": {"Status": "Open"},
            },
            "status_map does not name",
        ),
        (
            {"kind": "change", "header": _header(changeType="GAP_UPDATE")},
            r"GAP_\* events are re-reads",
        ),
        ({"kind": "change", "header": _header(entityName="Lead")}, "Lead records are not synced"),
        ({"kind": "record", "sobject": "CaseComment", "read": "poll", "record": {}}, "without Id"),
        ({"kind": "record", "sobject": "Case", "read": "guess", "record": {}}, "read"),
    ],
)
def test_bad_bodies_are_quarantined_with_the_reason(
    normaliser: SalesforceNormaliser, body: Any, reason: str
) -> None:
    with pytest.raises(SkippableRecordError, match=reason):
        normaliser.normalise(_raw(body))
