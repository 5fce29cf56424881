"""An AI hand-off to Salesforce end to end: ``POST /handoff`` (twice), real Kafka, the
Salesforce sandbox. Exactly one Case, carrying the reason in ``AI_Handoff_Reason__c`` and the
context as its one private CaseComment, for the customer's existing Contact. Counts, not times.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.rehearsal import SyncStack, sync_stack
from app.rehearsal_handoff import handoff_body, handoff_link, handoff_stack_options, post_handoff
from connectors.salesforce.soql_text import string_literal

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

KEY = "e2e-handoff-sf-key"
RULES = """
version: 2
connectors: {zendesk: zendesk, salesforce: salesforce}
routes:
  - {from: zendesk, to: salesforce}
handoff:
  default_target: salesforce_case
  flows:
    salesforce: {}
"""


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    options = {**handoff_stack_options(KEY), "sync_yaml": RULES}
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path_factory.mktemp("handoff-sf"),
        name="handoff-sf",
        salesforce="pubsub",
        **options,
    ) as running:
        yield running


async def cases_of(stack: SyncStack, link: str) -> list[dict[str, Any]]:
    return await stack.console().query(
        "SELECT Id, Subject, ContactId, AI_Handoff_Reason__c FROM Case "  # noqa: S608
        f"WHERE Deskstream_Link_Id__c = {string_literal(link)}"
    )


async def test_a_handoff_makes_one_case_with_the_context_comment(stack: SyncStack) -> None:
    run = uuid.uuid4().hex[:6]
    conversation, email = f"conv-{run}", f"lee-{run}@example.org"
    console = stack.console()
    contact = await console.create_contact(first_name="Lee", last_name="Chen", email=email)

    body = handoff_body(conversation, email)
    answers = [await post_handoff(stack, KEY, body) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    link = handoff_link(conversation)
    await stack.eventually(lambda: cases_of(stack, link), "the hand-off Case", within=120)
    await stack.settle()

    [case] = await cases_of(stack, link)
    assert case["AI_Handoff_Reason__c"] == "customer asked for a human"
    assert case["ContactId"] == contact  # the customer's own Contact, found by email
    contacts = await console.query(
        f"SELECT Id FROM Contact WHERE Email = {string_literal(email)}"  # noqa: S608
    )
    assert len(contacts) == 1
    [comment] = await stack.case_comments(str(case["Id"]))
    assert comment["IsPublished"] is False
    for said in ("customer asked for a human", "order: A-1001", "I was charged twice"):
        assert said in comment["CommentBody"]
