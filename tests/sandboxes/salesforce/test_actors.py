"""The Salesforce console user against the real sandbox: OAuth refresh-token sign-in, a Case
for a Contact with comments and status changes, change events (none for the comments) that do
not look like Deskstream's own writes, and a transparent sign-in again after the session expires."""

from __future__ import annotations

import pytest

from sandboxes.salesforce.actors import SalesforceConsoleUser, salesforce_http
from schemas.errors import FatalAPIError
from tests.sandboxes.salesforce.conftest import SalesforceEnv


async def test_a_case_for_a_contact_with_comments_and_statuses(env: SalesforceEnv) -> None:
    async with salesforce_http(env.url) as http:
        console = SalesforceConsoleUser(
            http,
            consumer_key=env.config.consumer_key,
            consumer_secret=env.config.consumer_secret,
            refresh_token=env.config.refresh_token,
        )
        contact_id = await console.create_contact(
            first_name="Ann", last_name="Lee", email="ann@northwind.example"
        )
        case_id = await console.create_case(
            contact_id=contact_id,
            subject="Export fails",
            description="Since yesterday.",
            priority="High",
        )
        await console.comment(case_id, "Called the customer.", published=False)
        await console.comment(case_id, "Fixed, sorry!")
        await console.set_status(case_id, "Working")
        await console.set_status(case_id, "Closed")
        case = await console.case(case_id)
    assert (case["ContactId"], case["Status"], case["IsClosed"]) == (contact_id, "Closed", True)
    assert (case["Origin"], case["Priority"]) == ("Phone", "High")
    assert case["CreatedById"] == console.user_id
    comments = env.sandbox.org.store.records["CaseComment"].values()
    assert sorted((c["CommentBody"], c["IsPublished"]) for c in comments) == [
        ("Called the customer.", False),
        ("Fixed, sorry!", True),
    ]
    origins = {e.header["changeOrigin"] for e in env.sandbox.org.bus.events}
    assert origins == {"com/salesforce/api/rest/59.0"}  # no client=: a person's writes
    entities = [e.entity for e in env.sandbox.org.bus.events]
    # CaseComment is not on Salesforce's "Change Event Object Support" list: the comments
    # are stored but publish nothing, so a comment sync has to poll them.
    assert entities == ["Contact", "Case", "Case", "Case"]


async def test_an_expired_session_signs_in_again(env: SalesforceEnv) -> None:
    async with salesforce_http(env.url) as http:
        console = SalesforceConsoleUser(
            http,
            consumer_key=env.config.consumer_key,
            consumer_secret=env.config.consumer_secret,
            refresh_token=env.config.refresh_token,
        )
        first = await console.sign_in()
        expired = await http.post("/_sandbox/salesforce/sessions/expire")
        assert expired.json()["expired"] >= 1
        contact_id = await console.create_contact(
            first_name="Bo", last_name="Chen", email="bo@globex.example"
        )
        assert contact_id.startswith("003")
        assert await console.sign_in() != first


async def test_a_wrong_refresh_token_is_fatal(env: SalesforceEnv) -> None:
    async with salesforce_http(env.url) as http:
        console = SalesforceConsoleUser(
            http,
            consumer_key=env.config.consumer_key,
            consumer_secret=env.config.consumer_secret,
            refresh_token="5Aep-not-mine",
        )
        with pytest.raises(FatalAPIError) as caught:
            await console.create_contact(first_name="C", last_name="D", email="c@d.example")
    assert caught.value.status == 400
    assert "invalid_grant" in str(caught.value)
