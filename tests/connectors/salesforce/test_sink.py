"""The Salesforce sink against the in-process Salesforce sandbox: a Case with its thread as
CaseComments, idempotent creates and appends (ambiguous writes included), the status picklist
both ways, contacts matched by email, and what the registry builds."""

from __future__ import annotations

import pytest

from connectors.base.commands import CONTACT_CREATED, CONTACT_MATCHED, CREATED_CONTACT, attribution
from connectors.base.fingerprints import fingerprint
from connectors.base.links import contact_link_id
from connectors.base.registry import build_sink
from connectors.salesforce.sink import SalesforceSink
from schemas.errors import ConfigurationError, FatalAPIError, RetriableAPIError
from schemas.models import (
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Priority,
)
from tests.connectors.salesforce.sink_harness import (
    AGENT,
    CUSTOMER,
    LINK,
    case,
    command,
    connector_settings,
    message,
    open_org,
    upsert,
)
from tests.sandboxes.salesforce.conftest import SalesforceEnv

THREAD = [
    message(CUSTOMER, "My refund never arrived.", 0),
    message(AGENT, "Escalating to billing.", 5, public=False),
    message(CUSTOMER, "Thanks, waiting.", 9),
]


async def _ambiguous(env: SalesforceEnv, rate: float) -> None:
    profile = {"ambiguous_write_rate": rate, "ambiguous_modes": ["5xx"]}
    assert (await env.http.put("/_sandbox/faults", json=profile)).status_code == 200


async def test_create_writes_one_case_and_the_thread_in_order(env: SalesforceEnv) -> None:
    async with open_org(env) as org:
        result = await org.sink.execute(upsert(THREAD))

        cases = org.records("Case")
        assert list(cases) == [result.target_entity_id]
        record = cases[str(result.target_entity_id)]
        assert (record["Deskstream_Link_Id__c"], record["Status"], record["Priority"]) == (
            LINK,
            "Working",
            "High",
        )
        assert (record["Subject"], record["Origin"]) == ("Refund for order 1234", "Email")
        assert record["AI_Handoff_Reason__c"] == "customer asked for a person"
        contact = org.records("Contact")[record["ContactId"]]
        assert (contact["Email"], contact["FirstName"], contact["LastName"]) == (
            "maria@example.com",
            "Maria",
            "Lopez",
        )
        comments = sorted(org.comments_on(record["Id"]), key=lambda c: (c["CreatedDate"], c["Id"]))
        expected = [f"{attribution(m, 'intercom')}\n\n{m.body_text}" for m in THREAD]
        assert [c["CommentBody"] for c in comments] == expected
        assert [c["IsPublished"] for c in comments] == [True, False, True]
        assert result.created_ids == {f"thread:{i}": c["Id"] for i, c in enumerate(comments)}
        assert fingerprint("salesforce", record["Id"], "status", "open") in result.fingerprints
        assert fingerprint("salesforce", record["Id"], "message", expected[1]) in (
            result.fingerprints
        )
        # 1 contact lookup + 1 contact upsert + 1 case upsert + 1 comments collection
        assert result.api_calls == 4


async def test_the_same_create_again_writes_nothing_new(env: SalesforceEnv) -> None:
    async with open_org(env) as org:
        first = await org.sink.execute(upsert(THREAD))
        again = await org.sink.execute(upsert(THREAD, attempt=2))

        assert again.target_entity_id == first.target_entity_id
        assert again.created_ids == first.created_ids
        assert not again.written
        assert len(org.records("Case")) == 1
        assert len(org.records("Contact")) == 1
        assert len(org.comments_on(str(first.target_entity_id))) == 3


async def test_a_create_whose_comments_answer_was_lost_writes_only_what_is_missing(
    env: SalesforceEnv,
) -> None:
    async with open_org(env) as org:
        created = await org.sink.execute(upsert(THREAD[:2]))
        case_id = str(created.target_entity_id)
        # The thread grew before the retry; the first two comments are there already.
        result = await org.sink.execute(upsert(THREAD, attempt=2))

        bodies = [c["CommentBody"] for c in org.comments_on(case_id)]
        assert len(bodies) == 3
        assert result.created_ids["thread:0"] == created.created_ids["thread:0"]
        assert result.created_ids["thread:2"] not in created.created_ids.values()
        assert "1 of 3 comments written" in result.detail


async def test_an_append_retried_after_an_ambiguous_failure_lands_once(
    env: SalesforceEnv,
) -> None:
    async with open_org(env, http_timeout_s=5.0) as org:
        created = await org.sink.execute(upsert(THREAD[:1]))
        case_id = str(created.target_entity_id)
        reply = command(
            EntityType.MESSAGE,
            CommandAction.APPEND,
            message(AGENT, "Refund sent today.", 30),
            target=case_id,
            key="append-1",
            options={"source_platform": "zendesk"},
        )
        await _ambiguous(env, 1.0)
        with pytest.raises(RetriableAPIError):
            await org.sink.execute(reply)
        assert len(org.comments_on(case_id)) == 2, "the write landed though its answer was lost"
        await _ambiguous(env, 0.0)

        retried = await org.sink.execute(reply)  # the runner's retry, same attempt
        assert not retried.written
        # a new worker after a crash: attempt 2, nothing remembered
        async with open_org(env) as fresh:
            again = await fresh.sink.execute(reply.model_copy(update={"attempt": 2}))

        assert not again.written
        assert len(org.comments_on(case_id)) == 2
        landed = [c for c in org.comments_on(case_id) if "Refund sent" in c["CommentBody"]]
        assert retried.created_ids == again.created_ids == {"message": landed[0]["Id"]}
        # a first attempt never reads: one call, the create
        other = reply.model_copy(
            update={"command_id": "append-2", "data": message(AGENT, "Anything else?", 40)}
        )
        assert (await org.sink.execute(other)).api_calls == 1
        assert len(org.comments_on(case_id)) == 3


async def test_status_and_priority_go_through_the_picklists_both_ways(
    env: SalesforceEnv,
) -> None:
    async with open_org(env) as org:
        case_id = str((await org.sink.execute(upsert([]))).target_entity_id)
        for status, spelled in [
            (CaseStatus.ON_HOLD, "Escalated"),
            (CaseStatus.CLOSED, "Closed"),
            (CaseStatus.NEW, "New"),
        ]:
            update = command(
                EntityType.CASE,
                CommandAction.UPDATE,
                case(status=status, priority=Priority.LOW),
                target=case_id,
                changed_fields=["status", "priority"],
            )
            result = await org.sink.execute(update)
            record = org.records("Case")[case_id]
            assert (record["Status"], record["Priority"]) == (spelled, "Low")
            # what the normaliser reads back (REST's rendering) is the canonical value written
            read = await org.sink.client.get("Case", case_id)
            assert org.sink.vocabulary.case(read, case_id).status is status
            assert fingerprint("salesforce", case_id, "status", status.value) in (
                result.fingerprints
            )

        pending = command(
            EntityType.CASE,
            CommandAction.UPDATE,
            case(status=CaseStatus.PENDING),
            target=case_id,
            changed_fields=["status"],
        )
        with pytest.raises(FatalAPIError, match="status_map"):
            await org.sink.execute(pending)


async def test_an_orgs_own_picklist_values_map_through_the_settings(
    env: SalesforceEnv,
) -> None:
    own = {"New": "new", "Escalated": "open", "Closed": "closed"}
    async with open_org(env, status_map=own) as org:
        case_id = str((await org.sink.execute(upsert([]))).target_entity_id)
        assert org.records("Case")[case_id]["Status"] == "Escalated"  # canonical open


async def test_expect_leaves_out_a_status_a_person_changed_meanwhile(
    env: SalesforceEnv,
) -> None:
    async with open_org(env) as org:
        case_id = str((await org.sink.execute(upsert([]))).target_entity_id)
        await env.update("Case", case_id, {"Status": "Closed"})  # a person closes it
        update = command(
            EntityType.CASE,
            CommandAction.UPDATE,
            case(status=CaseStatus.ON_HOLD, priority=Priority.LOW),
            target=case_id,
            changed_fields=["status", "priority"],
            options={"expect.status": "open", "expect.priority": "high"},
        )
        result = await org.sink.execute(update)

        record = org.records("Case")[case_id]
        assert (record["Status"], record["Priority"]) == ("Closed", "Low")
        assert "status left out: changed on Salesforce to closed" in result.detail
        assert not any(":status:" in p for p in result.fingerprints)


async def test_contact_upsert_finds_by_email_and_never_duplicates(env: SalesforceEnv) -> None:
    existing = await env.create(
        "Contact", {"FirstName": "Maria", "LastName": "Lopez", "Email": "Maria@Example.com"}
    )
    async with open_org(env) as org:
        profile = command(
            EntityType.CONTACT,
            CommandAction.UPSERT,
            Contact(emails=["maria@example.com"], name="Maria Lopez", phone="+34600000001"),
            link="lnk_" + "c" * 32,
            changed_fields=["phone"],
        )
        result = await org.sink.execute(profile)
        again = await org.sink.execute(profile.model_copy(update={"attempt": 2}))
        # a Case for the same customer uses that Contact too
        created = await org.sink.execute(upsert([]))

        contacts = org.records("Contact")
        assert list(contacts) == [existing]
        assert contacts[existing]["Phone"] == "+34600000001"
        assert contacts[existing]["Deskstream_Link_Id__c"] == "lnk_" + "c" * 32
        assert result.target_entity_id == again.target_entity_id == existing
        assert not again.written
        assert result.created_ids == again.created_ids == {CREATED_CONTACT: CONTACT_MATCHED}
        assert org.records("Case")[str(created.target_entity_id)]["ContactId"] == existing

        newcomer = command(
            EntityType.CONTACT,
            CommandAction.UPSERT,
            Contact(emails=["new@example.com"], name="Ana Ruiz"),
            link=contact_link_id("new@example.com", platform="", connector_id="", entity_id=""),
            key="contact-2",
            changed_fields=["name"],
        )
        made = await org.sink.execute(newcomer)
        made_again = await org.sink.execute(newcomer.model_copy(update={"attempt": 2}))
        assert made.target_entity_id == made_again.target_entity_id
        assert not made_again.written
        assert made.created_ids == {CREATED_CONTACT: CONTACT_CREATED}  # the sync says "created"
        assert made_again.created_ids == {CREATED_CONTACT: CONTACT_MATCHED}
        assert len(org.records("Contact")) == 2
        assert org.records("Contact")[existing]["Email"] == "Maria@Example.com"


def test_the_registry_builds_the_sink_from_the_connector_settings(env: SalesforceEnv) -> None:
    sink = build_sink("sf", connector_settings(env, rate_limit_per_minute=120))
    assert isinstance(sink, SalesforceSink)
    assert sink.budget is sink.client.budget
    sink.budget.set_share(1, 4)
    assert sink.budget.share == 0.25


def test_a_connector_without_salesforce_settings_is_a_configuration_error() -> None:
    from connectors.base.settings import ConnectorSettings

    with pytest.raises(ConfigurationError, match="no Salesforce settings"):
        SalesforceSink(connector_id="zd", settings=ConnectorSettings(platform="zendesk"))


async def test_an_email_with_quotes_is_matched_not_injected(env: SalesforceEnv) -> None:
    tricky = "o'brien\\x@example.com"
    existing = await env.create("Contact", {"LastName": "O'Brien", "Email": tricky})
    async with open_org(env) as org:
        found = await org.sink.execute(
            command(
                EntityType.CONTACT,
                CommandAction.UPSERT,
                Contact(emails=[tricky], name="Sean O'Brien"),
                changed_fields=["name"],
            )
        )
    assert found.target_entity_id == existing
    assert org.records("Contact")[existing]["FirstName"] == "Sean"
