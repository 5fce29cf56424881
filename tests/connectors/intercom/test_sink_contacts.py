"""The Intercom sink against the real Intercom sandbox: contact upserts that find before they
create, the acknowledgement message, and the commands Intercom is no target of."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from connectors.base.commands import CONTACT_CREATED, CONTACT_MATCHED, CREATED_CONTACT
from connectors.base.fingerprints import fingerprint
from connectors.base.settings import ConnectorSettings
from connectors.intercom.sink import IntercomSink
from sandboxes.base import ManualClock
from schemas.errors import ConfigurationError, FatalAPIError
from schemas.models import ActorKind, Contact, EntityRef, EntityType, Message, SyncCommand
from tests.connectors.intercom.sink_env import BOT, Connector, connector_env, settings_for
from tests.sandboxes.intercom.conftest import TOKEN


@pytest.fixture
async def connector(clock: ManualClock) -> AsyncIterator[Connector]:
    async with connector_env(clock) as env:
        yield env


# -- contacts -----------------------------------------------------------------------------------


async def test_upsert_finds_a_contact_by_a_secondary_email_instead_of_creating(
    connector: Connector,
) -> None:
    existing = await connector.post("/contacts", {"email": "maria.old@example.com"})
    await connector.events()
    data = Contact(
        emails=["maria.new@example.com", "Maria.Old@example.com"], name="Maria Lopez", plan="pro"
    )
    command = connector.command(EntityType.CONTACT, "upsert", data, changed=["name", "plan"])
    result = await connector.sink.execute(command)
    assert result.target_entity_id == existing["id"]
    assert result.created_ids == {CREATED_CONTACT: CONTACT_MATCHED}
    assert len(connector.sandbox.state.contacts) == 1
    stored = await connector.get(f"/contacts/{existing['id']}")
    assert (stored["name"], stored["custom_attributes"]) == ("Maria Lopez", {"plan": "pro"})
    assert result.api_calls == 2  # one search for both emails, one update
    (echo,) = await connector.events()
    assert isinstance(echo.data, Contact)
    assert fingerprint("intercom", existing["id"], "name", echo.data.name) in result.fingerprints
    assert fingerprint("intercom", existing["id"], "plan", echo.data.plan) in result.fingerprints


async def test_upsert_creates_only_after_every_lookup_missed(connector: Connector) -> None:
    data = Contact(emails=["new@example.com"], external_id="crm-9", name="Nia", phone="+1 555")
    command = connector.command(EntityType.CONTACT, "upsert", data)
    created = await connector.sink.execute(command)
    # by external id (404), by email (no match), then the create
    assert (created.written, created.api_calls) == (True, 3)
    assert created.created_ids == {CREATED_CONTACT: CONTACT_CREATED}
    stored = await connector.get(f"/contacts/{created.target_entity_id}")
    assert (stored["email"], stored["external_id"], stored["phone"]) == (
        "new@example.com",
        "crm-9",
        "+1 555",
    )
    replay = await connector.sink.execute(command)
    assert (replay.target_entity_id, replay.written, replay.api_calls) == (
        created.target_entity_id,
        False,
        1,
    )
    assert replay.created_ids == {CREATED_CONTACT: CONTACT_MATCHED}
    assert len(connector.sandbox.state.contacts) == 1


async def test_contact_update_writes_the_changed_fields(connector: Connector) -> None:
    contact = await connector.post("/contacts", {"email": "u@example.com", "name": "Old"})
    await connector.events()
    # As the sync stage sends a profile change: identity plus the changed fields only.
    data = Contact(
        emails=["u@example.com"], name="New", phone="+44 1", custom_attributes={"plan": "team"}
    )
    command = connector.command(
        EntityType.CONTACT,
        "update",
        data,
        entity_id=contact["id"],
        changed=["custom_attributes.plan", "phone"],
    )
    result = await connector.sink.execute(command)
    stored = await connector.get(f"/contacts/{contact['id']}")
    assert (stored["name"], stored["phone"], stored["custom_attributes"]) == (
        "Old",
        "+44 1",
        {"plan": "team"},
    )
    assert (result.written, result.api_calls) == (True, 1)
    (echo,) = await connector.events()
    assert "custom_attributes.plan" in echo.changed_fields
    assert isinstance(echo.data, Contact)
    for field, value in [
        ("phone", echo.data.phone),
        ("custom_attributes.plan", echo.data.custom_attributes["plan"]),
    ]:
        assert fingerprint("intercom", contact["id"], field, value) in result.fingerprints


async def test_a_contact_update_that_may_have_run_reads_first_and_writes_what_it_lacks(
    connector: Connector,
) -> None:
    """Run again after a crash between Intercom's answer and the commit (attempt 2): a PUT of
    the values the contact holds would count as a second write (the kill -9 soak caught one
    on Zendesk)."""
    contact = await connector.post("/contacts", {"email": "u@example.com", "name": "Old"})
    data = Contact(emails=["u@example.com"], name="New", phone="+44 1")
    changed = ["name", "phone"]

    def update(attempt: int) -> SyncCommand:
        return connector.command(
            EntityType.CONTACT, "update", data, entity_id=contact["id"], changed=changed,
            attempt=attempt,
        )  # fmt: skip

    first = await connector.sink.execute(update(1))
    again = await connector.sink.execute(update(2))
    assert (first.written, first.api_calls) == (True, 1)
    assert (again.written, again.api_calls) == (False, 1)  # the GET, no PUT
    assert sorted(again.fingerprints) == sorted(first.fingerprints)  # what it holds, as applied

    # A value the contact no longer holds (a person changed it since) is written again, alone.
    changed_by_a_person = await connector.api.put(
        f"/contacts/{contact['id']}", json={"name": "Someone Else"}
    )
    assert changed_by_a_person.status_code == 200, changed_by_a_person.text
    rewritten = await connector.sink.execute(update(2))
    assert (rewritten.written, rewritten.api_calls) == (True, 2)
    stored = await connector.get(f"/contacts/{contact['id']}")
    assert (stored["name"], stored["phone"]) == ("New", "+44 1")
    assert "updated name" in rewritten.detail


# -- case/upsert with a message: the acknowledgement --------------------------------------------


async def test_the_acknowledgement_reaches_the_right_contact(connector: Connector) -> None:
    await connector.post("/contacts", {"email": "someone@example.com"})
    maria = await connector.post("/contacts", {"email": "maria@example.com", "external_id": "x1"})
    await connector.events()
    ack = connector.message("We received your request #501 and will answer within a day.")
    requester = Contact(emails=["maria@example.com"])
    command = connector.command(EntityType.CASE, "upsert", ack, contact=requester)
    result = await connector.sink.execute(command)
    assert result.written
    cid = result.target_entity_id
    assert cid is not None
    conversation = await connector.get(f"/conversations/{cid}")
    assert [c["id"] for c in conversation["contacts"]["contacts"]] == [maria["id"]]
    source = conversation["source"]
    assert (source["delivered_as"], source["author"]["id"]) == ("admin_initiated", BOT)
    assert "We received your request #501" in source["body"]
    assert result.api_calls == 3  # contact search, earlier-acknowledgement search, the message
    events = await connector.events()
    assert [e.source.event_type for e in events] == ["conversation.admin.single.created"] * 2
    assert {e.source.actor.kind for e in events} == {ActorKind.INTEGRATION}
    message = next(e.data for e in events if isinstance(e.data, Message))
    assert fingerprint("intercom", cid, "message", message.body_text) in result.fingerprints
    replay = await connector.sink.execute(command)
    assert (replay.written, replay.target_entity_id) == (False, cid)
    assert len(connector.sandbox.state.conversations) == 1


async def test_no_acknowledgement_for_a_customer_intercom_does_not_know(
    connector: Connector,
) -> None:
    command = connector.command(
        EntityType.CASE,
        "upsert",
        connector.message("Thanks"),
        contact=Contact(emails=["stranger@example.com"], external_id="zd-user-3"),
    )
    result = await connector.sink.execute(command)
    assert (result.written, result.target_entity_id, result.api_calls) == (False, None, 2)
    assert connector.sandbox.state.conversations == {}


# -- contract edges -----------------------------------------------------------------------------


async def test_commands_intercom_is_no_target_of_are_fatal(connector: Connector) -> None:
    command = connector.command(EntityType.CASE, "delete", None, entity_id="1")
    with pytest.raises(FatalAPIError, match="does not execute case/delete"):
        await connector.sink.execute(command)


def test_a_sink_without_its_bot_admin_is_a_configuration_error() -> None:
    settings = ConnectorSettings(platform="intercom", api_token=SecretStr(TOKEN))
    with pytest.raises(ConfigurationError, match="SERVICE_ACCOUNT_ID"):
        IntercomSink(connector_id="ic", settings=settings)


async def test_a_conflict_on_create_writes_to_the_record_intercom_names() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/contacts/search":
            return httpx.Response(200, json={"type": "list", "data": [], "total_count": 0})
        if request.method == "POST" and request.url.path == "/contacts":
            error = {
                "code": "conflict",
                "message": "A contact matching those details already exists with id=5f1a",
            }
            return httpx.Response(409, json={"type": "error.list", "errors": [error]})
        body = json.loads(request.content)
        return httpx.Response(200, json={"type": "contact", "id": "5f1a", **body})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://x.test")
    sink = IntercomSink(connector_id="ic", settings=settings_for("https://x.test"), http=http)
    data = Contact(emails=["race@example.com"], name="Racer")
    command = SyncCommand(
        command_id="c",
        link_id="lnk",
        target=EntityRef(platform="intercom", connector_id="ic", entity_type=EntityType.CONTACT),
        action="upsert",
        idempotency_key="k",
        caused_by_event_id="e",
        data=data,
        issued_at="2026-11-21T10:00:00Z",
    )
    result = await sink.execute(command)
    await sink.aclose()
    assert result.target_entity_id == "5f1a"
    assert seen == ["POST /contacts/search", "POST /contacts", "PUT /contacts/5f1a"]


def test_the_sink_agent_can_set_this_workers_share_of_the_budget() -> None:
    settings = ConnectorSettings(
        platform="intercom", api_token=SecretStr(TOKEN), service_account_id=BOT
    )
    sink = IntercomSink(connector_id="ic", settings=settings)
    sink.budget.set_share(owned=2, total=8)
    assert sink.client.budget.share == 0.25
