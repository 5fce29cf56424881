"""The Zendesk sink against the Zendesk sandbox served on loopback: imports with authors,
times and re-uploaded attachments, idempotent creates, identity resolution, appends, updates,
contacts, and the own-write fingerprints matching what the webhooks later say."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.base.commands import (
    CONTACT_CREATED,
    CONTACT_MATCHED,
    CREATED_CONTACT,
    OPTION_UNHEARD,
    attribution,
    encode_list,
)
from connectors.base.fingerprints import fingerprint
from connectors.base.ingest import WebhookRequest
from connectors.base.links import case_link_id
from connectors.base.registry import build_ingest_connector, build_normaliser, build_sink
from connectors.base.settings import ConnectorSettings
from connectors.zendesk.ingest import ZendeskIngest
from connectors.zendesk.normalize import ZendeskNormaliser
from connectors.zendesk.sink import ZendeskSink
from sandboxes.base import ManualClock
from sandboxes.zendesk import basic_header
from schemas.errors import FatalAPIError, RateLimitedError, RetriableAPIError
from schemas.models import (
    Actor,
    ActorKind,
    Attachment,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityData,
    EntityRef,
    EntityType,
    Envelope,
    Message,
    Platform,
    Priority,
    RawDelivery,
    SyncCommand,
)
from tests.sandboxes.zendesk.conftest import TOKEN, ZendeskEnv, serve

T0 = datetime(2024, 12, 31, 9, 0, tzinfo=UTC)  # before the sandbox clock's "now"
CUSTOMER = Actor(kind=ActorKind.CUSTOMER, id="ic-1", email="maria@example.com", name="Maria")
AGENT = Actor(kind=ActorKind.AGENT, id="ic-admin-7", name="Paul (Intercom)")
AI = Actor(kind=ActorKind.AI, id="bot", name="Fin")


@dataclass
class Connector:
    env: ZendeskEnv
    sink: ZendeskSink
    settings: ConnectorSettings
    #: every request the sink's httpx client sent: (method, path)
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.env.sandbox.core.state

    @property
    def integration_id(self) -> int:
        return self.env.sandbox.core.integration_user.id


async def _connect(env: ZendeskEnv) -> AsyncIterator[Connector]:
    settings = env.connector_settings()
    seen: list[tuple[str, str]] = []

    async def record(request: httpx.Request) -> None:
        seen.append((request.method, request.url.path))

    # No default credentials on the client: attachments are downloaded with it too.
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        sink = ZendeskSink(connector_id="zd", settings=settings, http=http)
        yield Connector(env, sink, settings, seen)
        await sink.aclose()


@pytest.fixture
async def zd(zendesk: ZendeskEnv) -> AsyncIterator[Connector]:
    async for connector in _connect(zendesk):
        yield connector


@pytest.fixture
async def zd_hooks(zendesk_hooks: ZendeskEnv) -> AsyncIterator[Connector]:
    async for connector in _connect(zendesk_hooks):
        yield connector


def message(author: Actor, body: str, minutes: int, **more: Any) -> Message:
    values: dict[str, Any] = {"public": True} | more
    return Message(
        case_id="ic-conv-1",
        author=author,
        body_text=body,
        created_at=T0 + timedelta(minutes=minutes),
        **values,
    )


def command(
    entity: EntityType,
    action: CommandAction,
    data: EntityData,
    *,
    link: str = "lnk_" + "a" * 32,
    target: str | None = None,
    key: str = "cmd-1",
    **more: Any,
) -> SyncCommand:
    return SyncCommand(
        command_id=key,
        link_id=link,
        target=EntityRef(
            platform=Platform.ZENDESK, connector_id="zd", entity_type=entity, entity_id=target
        ),
        action=action,
        idempotency_key=key,
        caused_by_event_id="evt-1",
        data=data,
        issued_at=T0,
        **more,
    )


def case(**more: Any) -> Case:
    values: dict[str, Any] = {
        "subject": "Refund for order 1234",
        "status": CaseStatus.OPEN,
        "priority": Priority.HIGH,
        "tags": ["refund", "vip"],
        "custom_fields": {"360001000004": 1234},
    }
    return Case(**(values | more))


def upsert(thread: list[Message], contact: Contact | None = None, **more: Any) -> SyncCommand:
    contact = contact or Contact(emails=["maria@example.com"], name="Maria Lopez")
    options = {"source_platform": "intercom"} | more.pop("options", {})
    return command(
        EntityType.CASE,
        CommandAction.UPSERT,
        case(),
        thread=thread,
        contact=contact,
        options=options,
        **more,
    )


async def source_file(env: ZendeskEnv, name: str, data: bytes) -> Attachment:
    """A file served without credentials, as another platform's attachment URL is."""
    answer = await env.http.post(
        "/api/v2/uploads",
        params={"filename": name},
        content=data,
        headers={"Content-Type": "image/png"},
    )
    url = answer.json()["upload"]["attachment"]["content_url"]
    digest = hashlib.sha256(data).hexdigest()
    return Attachment(
        name=name, content_type="image/png", size_bytes=len(data), source_url=url, sha256=digest
    )


def comments_of(zd: Connector, ticket_id: str) -> list[Any]:
    ticket = zd.state.tickets[int(ticket_id)]
    return [zd.state.comments[c] for c in ticket.comment_ids]


async def test_create_imports_the_thread_with_authors_times_and_attachments(zd: Connector) -> None:
    screenshot = await source_file(zd.env, "crash.png", b"\x89PNG" + bytes(range(256)) * 40)
    log = await source_file(zd.env, "log.png", b"\x89PNG tiny")
    thread = [
        message(CUSTOMER, "My refund never arrived.", 0, attachments=[screenshot]),
        message(AGENT, "Escalating to billing.", 5, public=False),
        message(AI, "A billing agent will reply within a day.", 6, attachments=[log]),
    ]
    sources = set(zd.state.attachments)
    zd.requests.clear()

    result = await zd.sink.execute(upsert(thread))

    ticket = zd.state.tickets[int(result.target_entity_id or 0)]
    assert ticket.external_id == "lnk_" + "a" * 32
    assert (ticket.status, ticket.priority, ticket.subject) == (
        "open",
        "high",
        "Refund for order 1234",
    )
    assert ticket.tags == ["refund", "vip"]
    assert ticket.custom_fields == {360001000004: "1234"}
    requester = zd.state.users[ticket.requester_id]
    assert (requester.email, requester.name, requester.role) == (
        "maria@example.com",
        "Maria Lopez",
        "end-user",
    )
    comments = comments_of(zd, str(ticket.id))
    assert [c.author_id for c in comments] == [requester.id, zd.integration_id, zd.integration_id]
    assert [c.created_at for c in comments] == [m.created_at for m in thread]
    assert [c.public for c in comments] == [True, False, True]
    assert comments[0].body == "My refund never arrived."  # the requester wrote it: no attribution
    assert comments[1].body == f"{attribution(thread[1], 'intercom')}\n\nEscalating to billing."
    assert comments[2].body.startswith("Fin (ai) · 2024-12-31 09:06 UTC · via Intercom\n\n")
    assert result.created_ids == {f"thread:{i}": str(c.id) for i, c in enumerate(comments)}
    # Re-uploaded, not linked: new attachments whose bytes match the sources'.
    async with httpx.AsyncClient() as anonymous:
        for comment, source in ((comments[0], screenshot), (comments[2], log)):
            (attachment_id,) = comment.attachment_ids
            assert attachment_id not in sources
            attachment = zd.state.attachments[attachment_id]
            assert attachment.file_name == source.name
            served = await anonymous.get(f"{zd.env.url}/attachments/token/{attachment.token}/")
            assert hashlib.sha256(served.content).hexdigest() == source.sha256
    # A first attempt: no ticket lookup. 1 requester create (a new customer: no lookup),
    # 2 uploads, 1 import, 1 comments read (the import answers no comment ids)
    assert result.api_calls == 5
    api = [r for r in zd.requests if r[1].startswith("/api/v2/")]
    assert len(api) == result.api_calls  # the two downloads are not API calls
    assert Counter(p for _, p in api)["/api/v2/imports/tickets"] == 1
    tid = str(ticket.id)
    for name, value in (("status", "open"), ("priority", "high"), ("tags", ["vip", "refund"])):
        assert fingerprint("zendesk", tid, name, value) in result.fingerprints
    assert fingerprint("zendesk", tid, "custom_fields.360001000004", "1234") in result.fingerprints
    assert fingerprint("zendesk", tid, "message", comments[1].body) in result.fingerprints


async def test_single_message_create_uses_the_idempotency_key(zd: Connector) -> None:
    first = message(CUSTOMER, "Where is my parcel?", 0)
    result = await zd.sink.execute(upsert([first], key="cmd-single"))
    (only,) = comments_of(zd, result.target_entity_id or "")
    requester = zd.state.tickets[int(result.target_entity_id or 0)].requester_id
    assert (only.author_id, only.public) == (requester, True)
    # A create cannot set the comment's time: the attribution line carries it.
    assert only.body == f"{attribution(first, 'intercom')}\n\nWhere is my parcel?"
    assert result.created_ids == {"thread:0": str(only.id)}
    assert len(zd.env.sandbox.core.idempotency) == 1
    assert ("POST", "/api/v2/imports/tickets") not in zd.requests


@pytest.mark.parametrize("messages", [1, 2], ids=["create", "import"])
async def test_the_same_create_twice_makes_one_ticket(zd: Connector, messages: int) -> None:
    thread = [message(CUSTOMER, "Hello", 0), message(AGENT, "Hi!", 1)][:messages]
    first = await zd.sink.execute(upsert(thread))
    # Run again after a crash before the commit: the runner hands it over as attempt 2.
    again = await zd.sink.execute(upsert(thread, attempt=2))
    assert len(zd.state.tickets) == 1
    assert (again.target_entity_id, again.written) == (first.target_entity_id, False)
    assert again.created_ids == first.created_ids
    assert again.api_calls == 2  # the lookup by external_id and the comment ids


@pytest.mark.parametrize("messages", [1, 2], ids=["create", "import"])
async def test_a_first_create_makes_no_lookup_by_external_id(zd: Connector, messages: int) -> None:
    """Issue 11: a first attempt cannot meet an earlier one's ticket, so the pre-create lookup
    is skipped; counted at the sandbox, so the call cannot come back unnoticed."""
    thread = [message(CUSTOMER, "Hello", 0), message(AGENT, "Hi!", 1)][:messages]
    zd.requests.clear()
    result = await zd.sink.execute(upsert(thread))
    assert ("GET", "/api/v2/tickets") not in zd.requests
    reads = [("GET", f"/api/v2/tickets/{result.target_entity_id}/comments")] * (messages - 1)
    written = ("POST", "/api/v2/imports/tickets" if messages > 1 else "/api/v2/tickets")
    assert zd.requests == [
        ("POST", "/api/v2/users"),  # the requester: a new customer, created without a lookup
        written,
        *reads,
    ]
    assert result.api_calls == len(zd.requests)


async def test_a_429_after_the_import_landed_does_not_import_twice(zd: Connector) -> None:
    """The import lands and the comment-id read that follows answers 429: the command is
    retried at attempt 1 and not uncertain (a 429 writes nothing itself), so the sink must
    remember that its ticket exists (the e2e burst run found this as a second ticket)."""
    maria = Contact(emails=["maria@example.com"], name="Maria Lopez")
    await zd.sink.execute(command(EntityType.CONTACT, CommandAction.UPSERT, maria, key="c-1"))
    # Requests 0 (the requester create: 422, Maria exists), 1 (her lookup) and 2 (the import)
    # pass, 3 (comment ids) is a 429.
    burst = {"burst_429_every": 3, "burst_429_length": 1, "burst_429_retry_after_s": 0.0}
    assert (await zd.env.http.put("/_sandbox/faults", json=burst)).status_code == 200
    create = upsert([message(CUSTOMER, "Hello", 0), message(AGENT, "Hi!", 1)])
    with pytest.raises(RateLimitedError):
        await zd.sink.execute(create)
    assert (await zd.env.http.put("/_sandbox/faults", json={"profile": "none"})).status_code == 200
    zd.requests.clear()
    retry = await zd.sink.execute(create)
    assert len(zd.state.tickets) == 1
    assert retry.written is False
    comments = ("GET", f"/api/v2/tickets/{retry.target_entity_id}/comments")
    assert zd.requests == [("GET", "/api/v2/tickets"), comments]


async def test_a_crash_after_the_create_is_found_by_external_id(zd: Connector) -> None:
    link = case_link_id("intercom", "ic", "conv-9")
    # The earlier attempt's create reached Zendesk; its answer never reached us.
    earlier = await zd.env.create_ticket(external_id=link)
    retry = upsert([message(CUSTOMER, "It smokes.", 0)], link=link, key="k2", attempt=2)
    found = await zd.sink.execute(retry)
    assert found.target_entity_id == str(earlier["id"])
    assert (found.written, len(zd.state.tickets)) == (False, 1)


@pytest.mark.parametrize("messages", [1, 2], ids=["create", "import"])
async def test_a_lost_answer_to_a_first_create_is_looked_up_on_its_retry(
    zd: Connector, messages: int
) -> None:
    """The create lands and its answer is lost (the sandbox's ambiguous 5xx): the retry, at
    the same attempt 1, is remembered as uncertain and looks before it creates."""
    maria = Contact(emails=["maria@example.com"], name="Maria Lopez")
    await zd.sink.execute(command(EntityType.CONTACT, CommandAction.UPSERT, maria, key="c-1"))
    # The requester exists, so the ticket write is the first write, and its answer is lost.
    faults = {"ambiguous_write_rate": 1.0, "ambiguous_modes": ["5xx"]}
    assert (await zd.env.http.put("/_sandbox/faults", json=faults)).status_code == 200
    thread = [message(CUSTOMER, "Hello", 0), message(AGENT, "Hi!", 1)][:messages]
    create = upsert(thread)
    with pytest.raises(RetriableAPIError):
        await zd.sink.execute(create)
    assert (await zd.env.http.put("/_sandbox/faults", json={"profile": "none"})).status_code == 200
    zd.requests.clear()
    retry = await zd.sink.execute(create)
    assert len(zd.state.tickets) == 1
    assert (retry.written, retry.target_entity_id) == (False, str(next(iter(zd.state.tickets))))
    ticket = retry.target_entity_id
    comments = ("GET", f"/api/v2/tickets/{ticket}/comments")
    assert zd.requests == [("GET", "/api/v2/tickets"), comments]


async def test_a_user_matching_a_secondary_email_is_reused(zd: Connector) -> None:
    created = await zd.env.http.post(
        "/api/v2/users",
        json={
            "user": {
                "name": "Maria",
                "email": "maria@home.example",
                "identities": [{"type": "email", "value": "maria@work.example"}],
            }
        },
    )
    existing = created.json()["user"]["id"]
    users = len(zd.state.users)
    contact = Contact(emails=["m.lopez@new.example", "Maria@Work.example "], name="Maria")
    result = await zd.sink.execute(upsert([message(CUSTOMER, "Hi", 0)], contact))
    assert zd.state.tickets[int(result.target_entity_id or 0)].requester_id == existing
    assert len(zd.state.users) == users
    assert ("POST", "/api/v2/users/create_or_update") not in zd.requests


async def test_a_returning_customer_keeps_their_zendesk_profile(zd: Connector) -> None:
    """Issue 11: the requester is created first, one call for a new customer. Zendesk's
    Create User is no upsert: a customer it knows answers 422 DuplicateValue and nothing is
    written, so the name a person set on Zendesk stays; the lookup then finds them."""
    created = await zd.env.http.post(
        "/api/v2/users", json={"user": {"name": "M. López (VIP)", "email": "maria@example.com"}}
    )
    existing = created.json()["user"]["id"]
    users = len(zd.state.users)
    zd.requests.clear()
    result = await zd.sink.execute(upsert([message(CUSTOMER, "Hi", 0)]))
    assert zd.requests == [
        ("POST", "/api/v2/users"),  # refused: the email is taken
        ("GET", "/api/v2/users/search"),
        ("POST", "/api/v2/tickets"),
    ]
    assert zd.state.tickets[int(result.target_entity_id or 0)].requester_id == existing
    assert (len(zd.state.users), zd.state.users[existing].name) == (users, "M. López (VIP)")


async def test_a_requester_created_before_a_lost_answer_is_not_doubled(
    clock: ManualClock,
) -> None:
    """The requester's create landed but its answer was lost, and the search has not indexed
    the user yet: the retry's create is refused (422), the lookup misses, and
    ``create_or_update`` (Zendesk's upsert by email) finds that user: one user, one ticket."""
    async with serve(clock, search_index_lag_s=600.0) as env:
        async for zd in _connect(env):
            landed = {"user": {"name": "Maria Lopez", "email": "maria@example.com"}}
            first = (await env.http.post("/api/v2/users", json=landed)).json()["user"]["id"]
            zd.requests.clear()
            retry = await zd.sink.execute(upsert([message(CUSTOMER, "Hi", 0)], attempt=2))
            assert zd.requests == [
                ("GET", "/api/v2/tickets"),  # attempt 2: the ticket by external id, none
                ("POST", "/api/v2/users"),  # refused: the email is taken
                ("GET", "/api/v2/users/search"),  # not indexed yet: a miss
                ("POST", "/api/v2/users/create_or_update"),
                ("POST", "/api/v2/tickets"),
            ]
            ticket = zd.state.tickets[int(retry.target_entity_id or 0)]
            assert ticket.requester_id == first
            assert [u.id for u in zd.state.users.values() if u.email == "maria@example.com"] == [
                first
            ]


async def test_a_user_matching_the_external_id_is_reused(zd: Connector) -> None:
    created = await zd.env.http.post(
        "/api/v2/users", json={"user": {"name": "Maria", "external_id": "crm-7"}}
    )
    contact = Contact(emails=["maria@example.com"], external_id="crm-7", name="Maria")
    result = await zd.sink.execute(upsert([message(CUSTOMER, "Hi", 0)], contact))
    requester = zd.state.tickets[int(result.target_entity_id or 0)].requester_id
    assert requester == created.json()["user"]["id"]
    assert zd.state.user_by_email("maria@example.com") is None  # found, not created


async def test_a_new_customer_is_created_once_by_concurrent_commands(zd: Connector) -> None:
    contact = Contact(emails=["new@example.com"], name="New Customer")
    commands = [
        upsert([message(CUSTOMER, f"ticket {n}", 0)], contact, link=f"lnk_{n:032d}", key=f"k{n}")
        for n in (1, 2)
    ]
    first, second = await asyncio.gather(*(zd.sink.execute(c) for c in commands))
    tickets = [zd.state.tickets[int(r.target_entity_id or 0)] for r in (first, second)]
    assert tickets[0].id != tickets[1].id
    assert tickets[0].requester_id == tickets[1].requester_id
    assert len([u for u in zd.state.users.values() if u.email == "new@example.com"]) == 1
    # Both commands raced to create: Create User is no upsert, so one of them was refused
    # (422 DuplicateValue, nothing written) and found the other's user by email.
    assert zd.requests.count(("POST", "/api/v2/users")) == 2
    assert zd.requests.count(("GET", "/api/v2/users/search")) == 1


async def test_append_public_reply_and_internal_note(zd: Connector) -> None:
    created = await zd.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
    ticket_id = created.target_entity_id or ""
    requester = zd.state.tickets[int(ticket_id)].requester_id
    reply = message(CUSTOMER, "Any news?", 30)
    by_link = await zd.sink.execute(command(EntityType.MESSAGE, CommandAction.APPEND, reply))
    note_file = await source_file(zd.env, "note.png", b"\x89PNG note")
    note = message(AGENT, "Refund approved.", 31, public=False, attachments=[note_file])
    fresh = ZendeskSink(connector_id="zd", settings=zd.settings)  # nothing cached
    try:
        by_id = await fresh.execute(
            command(EntityType.MESSAGE, CommandAction.APPEND, note, target=ticket_id)
        )
    finally:
        await fresh.aclose()
    comments = comments_of(zd, ticket_id)
    assert [(c.author_id, c.public) for c in comments[1:]] == [
        (requester, True),
        (zd.integration_id, False),
    ]
    assert comments[1].body == f"{attribution(reply, 'generic')}\n\nAny news?"
    assert len(comments[2].attachment_ids) == 1
    assert by_link.api_calls == 2  # lookup by link + the update (requester known from it)
    assert by_id.api_calls == 2  # upload + the update
    assert by_link.created_ids == {"message": str(comments[1].id)}
    assert by_id.fingerprints == [fingerprint("zendesk", ticket_id, "message", comments[2].body)]


async def test_append_before_the_ticket_exists_is_fatal(zd: Connector) -> None:
    append = command(EntityType.MESSAGE, CommandAction.APPEND, message(AGENT, "x", 0))
    with pytest.raises(FatalAPIError, match="has not run"):
        await zd.sink.execute(append)


async def test_update_writes_only_what_changed(zd: Connector) -> None:
    created = await zd.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
    ticket_id = created.target_entity_id
    update = command(
        EntityType.CASE,
        CommandAction.UPDATE,
        case(status=CaseStatus.ON_HOLD, subject="ignored: not in changed_fields"),
        target=ticket_id,
        changed_fields=["status", "tags"],
        options={"tags_added": encode_list(["billing"]), "tags_removed": encode_list(["vip"])},
    )
    result = await zd.sink.execute(update)
    ticket = zd.state.tickets[int(ticket_id or 0)]
    assert (ticket.status, ticket.subject) == ("hold", "Refund for order 1234")
    assert ticket.tags == ["refund", "billing"]
    assert result.api_calls == 1
    assert result.fingerprints == [
        fingerprint("zendesk", ticket_id or "", "status", "on_hold"),
        fingerprint("zendesk", ticket_id or "", "tags", ["refund", "billing"]),
    ]
    nothing = command(
        EntityType.CASE, CommandAction.UPDATE, case(), target=ticket_id, changed_fields=["channel"]
    )
    skipped = await zd.sink.execute(nothing)
    assert (skipped.written, skipped.api_calls) == (False, 0)


async def test_commands_outside_the_vocabulary_are_fatal(zd: Connector) -> None:
    unknown = command(EntityType.CASE, CommandAction.DELETE, None, target="1")
    with pytest.raises(FatalAPIError, match="cannot delete a case"):
        await zd.sink.execute(unknown)
    wrong = command(EntityType.CASE, CommandAction.UPSERT, Contact(emails=["a@b.example"]))
    with pytest.raises(FatalAPIError, match="needs data of type Case"):
        await zd.sink.execute(wrong)


async def test_contact_upsert_creates_then_writes_changes(zd: Connector) -> None:
    contact = Contact(
        emails=["ana@example.com", "ana@work.example"],
        name="Ana",
        phone="+34 600 000 000",
        external_id="crm-9",
        plan="premium",
        custom_attributes={"segment": "smb"},
    )
    created = await zd.sink.execute(command(EntityType.CONTACT, CommandAction.UPSERT, contact))
    user = zd.state.users[int(created.target_entity_id or 0)]
    assert (user.name, user.phone, user.external_id, user.user_fields) == (
        "Ana",
        "+34 600 000 000",
        "crm-9",
        {"segment": "smb", "plan": "premium"},
    )
    assert zd.state.user_by_email("ana@work.example") is user
    renamed = contact.model_copy(
        update={"name": "Ana María", "emails": ["ana@example.com", "ana@new.example"]}
    )
    again = await zd.sink.execute(
        command(
            EntityType.CONTACT, CommandAction.UPSERT, renamed, changed_fields=["name", "emails"]
        )
    )
    assert again.target_entity_id == created.target_entity_id
    assert created.created_ids == {CREATED_CONTACT: CONTACT_CREATED}
    assert again.created_ids == {CREATED_CONTACT: CONTACT_MATCHED}
    assert (user.name, zd.state.user_by_email("ana@new.example")) == ("Ana María", user)
    assert fingerprint("zendesk", str(user.id), "name", "Ana María") in again.fingerprints
    assert fingerprint("zendesk", str(user.id), "plan", "premium") in created.fingerprints
    phone = contact.model_copy(update={"phone": "+34 611 111 111"})
    update = command(
        EntityType.CONTACT,
        CommandAction.UPDATE,
        phone,
        target=str(user.id),
        changed_fields=["phone"],
    )
    assert (await zd.sink.execute(update)).api_calls == 1
    assert user.phone == "+34 611 111 111"


async def _second_note_is_refused(zd: Connector) -> RateLimitedError:
    """Create a ticket, add a note, add it again: the second update's refusal."""
    created = await zd.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
    target = created.target_entity_id
    note = command(EntityType.MESSAGE, CommandAction.APPEND, message(AGENT, "1", 1), target=target)
    await zd.sink.execute(note)
    with pytest.raises(RateLimitedError) as limited:
        await zd.sink.execute(note)
    return limited.value


async def test_the_per_ticket_update_limit_surfaces_as_rate_limited(clock: ManualClock) -> None:
    async with serve(clock, ticket_update_limit=1) as env:
        async for zd in _connect(env):
            limited = await _second_note_is_refused(zd)
            assert limited.retry_after > 0
            assert limited.scope == "record"
            assert zd.sink.client.budget.delay() == 0  # the account budget is untouched


async def test_the_update_ticket_account_limit_holds_every_call(clock: ManualClock) -> None:
    """Update Ticket's 100 a minute per account answers a JSON 429 with ``Retry-After``: the
    sink sees RateLimitedError for the whole account, and the client's budget waits."""
    async with serve(clock, ticket_update_account_per_minute=1) as env:
        async for zd in _connect(env):
            limited = await _second_note_is_refused(zd)
            assert limited.retry_after > 0
            assert limited.scope == "account"
            assert zd.sink.client.budget.delay() > 0  # every call now waits


def normalised(zd: Connector) -> list[Envelope]:
    """Every webhook the sandbox delivered, verified and normalised like the worker does."""
    assert zd.env.receiver is not None
    ingest = ZendeskIngest(connector_id="zd", secret=zd.settings.secret)
    normaliser = ZendeskNormaliser(connector_id="zd", settings=zd.settings)
    envelopes = []
    for delivery in zd.env.receiver.deliveries:
        request = WebhookRequest(
            "zd",
            {k.lower(): v for k, v in delivery.headers.items()},
            delivery.body,
            zd.env.clock.now(),
        )
        ingest.verify(request)
        raw = RawDelivery(
            delivery_id=ingest.delivery_id(request),
            connector_id="zd",
            platform=Platform.ZENDESK,
            received_at=request.received_at,
            body=delivery.body,
            signature_verified=True,
        )
        envelopes += normaliser.normalise(raw)
    return envelopes


async def test_webhooks_of_our_writes_are_ours_and_an_agents_are_theirs(
    zd_hooks: Connector,
) -> None:
    zd = zd_hooks
    thread = [message(CUSTOMER, "Hello", 0), message(AGENT, "Looking", 1)]
    created = await zd.sink.execute(upsert(thread))
    ticket_id = created.target_entity_id or ""
    ours = await zd.sink.execute(
        command(
            EntityType.CASE,
            CommandAction.UPDATE,
            case(status=CaseStatus.PENDING),
            target=ticket_id,
            changed_fields=["status"],
            options={"tags_added": encode_list(["waiting"])},
        )
    )
    admin = zd.env.sandbox.config.admin_email
    as_agent = {"Authorization": basic_header(admin, TOKEN)}
    answer = await zd.env.http.put(
        f"/api/v2/tickets/{ticket_id}",
        json={"ticket": {"status": "solved", "comment": {"body": "Done!"}}},
        headers=as_agent,
    )
    assert answer.status_code == 200
    async with asyncio.timeout(10):
        await zd.env.drain()

    events = normalised(zd)
    by_type = Counter((e.source.event_type.rsplit(".", 1)[1], e.source.actor.kind) for e in events)
    assert by_type == {
        ("created", ActorKind.SYSTEM): 1,  # the new requester (user events name no actor)
        ("created", ActorKind.INTEGRATION): 1,
        ("comment_added", ActorKind.INTEGRATION): 2,
        ("status_changed", ActorKind.INTEGRATION): 1,
        ("tags_changed", ActorKind.INTEGRATION): 1,
        ("status_changed", ActorKind.AGENT): 1,
        ("comment_added", ActorKind.AGENT): 1,
    }
    assert {e.link_id for e in events if e.source.entity_type is not EntityType.CONTACT} == {
        "lnk_" + "a" * 32
    }
    imported = [e.data for e in events if e.source.event_type.endswith("comment_added")][:2]
    assert [m.author.kind for m in imported if isinstance(m, Message)] == [
        ActorKind.CUSTOMER,  # the requester's own words, written by us
        ActorKind.INTEGRATION,
    ]
    # Own-write fingerprints: what the sink reported is what the webhooks say (echo layer 2).
    for envelope in events:
        data = envelope.data
        if envelope.source.actor.kind is not ActorKind.INTEGRATION:
            continue
        for name in envelope.changed_fields:
            if isinstance(data, Case) and name in ("status", "tags"):
                print_ = fingerprint("zendesk", ticket_id, name, getattr(data, name))
                assert print_ in created.fingerprints + ours.fingerprints
        if isinstance(data, Message):
            body_print = fingerprint("zendesk", ticket_id, "message", data.body_text)
            assert body_print in created.fingerprints


class _LostAnswer(httpx.AsyncBaseTransport):
    """Forwards to the sandbox, but loses the answer of the first ticket update: the write
    lands in Zendesk and the sink sees a timeout."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "PUT" and not self.lost:
            self.lost += 1
            await response.aclose()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_retried_append_whose_write_landed_is_not_written_twice(zd: Connector) -> None:
    created = await zd.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
    ticket_id = created.target_entity_id or ""
    reply = command(
        EntityType.MESSAGE, CommandAction.APPEND, message(AGENT, "On it", 3), target=ticket_id
    )
    transport = _LostAnswer()
    async with httpx.AsyncClient(transport=transport) as http:
        sink = ZendeskSink(connector_id="zd", settings=zd.settings, http=http)
        with pytest.raises(RetriableAPIError, match="timed out"):
            await sink.execute(reply)
        retried = await sink.execute(reply)  # what connectors.base.retry does next
    assert transport.lost == 1
    bodies = [c.body for c in comments_of(zd, ticket_id)]
    assert bodies.count(f"{attribution(reply.data, 'generic')}\n\nOn it") == 1  # type: ignore[arg-type]
    assert retried.written is False
    assert retried.created_ids == {"message": str(comments_of(zd, ticket_id)[-1].id)}
    # A redelivered command (attempt 2) from another worker checks too; a first attempt does not.
    again = await zd.sink.execute(reply.model_copy(update={"attempt": 2}))
    assert (again.written, again.api_calls) == (False, 1)
    first_time = await zd.sink.execute(reply.model_copy(update={"command_id": "other"}))
    assert (first_time.written, first_time.api_calls) == (True, 1)


async def test_the_registry_builds_the_zendesk_connector(zd: Connector) -> None:
    settings = zd.settings
    assert isinstance(build_ingest_connector("zd", settings), ZendeskIngest)
    assert isinstance(build_normaliser("zd", settings), ZendeskNormaliser)
    sink = build_sink("zd", settings)
    assert isinstance(sink, ZendeskSink)
    await sink.aclose()


async def test_an_upsert_run_again_after_a_crash_writes_nothing(zd: Connector) -> None:
    # kill -9 between a write and its commit: the next owner runs the command again
    # (attempt 2). The user it finds already holds every value, so no PUT, no effect.
    contact = Contact(emails=["bo@example.com"], name="Bo", phone="+1 555 0100", plan="premium")
    upsert = command(
        EntityType.CONTACT, CommandAction.UPSERT, contact, changed_fields=["name", "phone", "plan"]
    )
    first = await zd.sink.execute(upsert)
    again = await zd.sink.execute(upsert.model_copy(update={"attempt": 2}))
    assert first.written
    assert not again.written
    assert again.api_calls == 1  # the lookup that found the user
    assert again.target_entity_id == first.target_entity_id
    assert "already holds" in again.detail
    changed = contact.model_copy(update={"phone": "+1 555 0199"})
    moved = command(
        EntityType.CONTACT, CommandAction.UPSERT, changed, changed_fields=["name", "phone", "plan"]
    )
    assert (await zd.sink.execute(moved)).written  # a real change is still written
    assert zd.state.users[int(first.target_entity_id or 0)].phone == "+1 555 0199"


async def test_an_update_run_again_after_a_crash_writes_nothing(zd: Connector) -> None:
    # kill -9 between Zendesk's answer and the commit: the next owner runs the case/update
    # again (attempt 2). The ticket already holds every value: no PUT, no audit, and the
    # fingerprints of what it holds, so the sync stage settles the write as applied.
    created = await zd.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
    ticket_id = created.target_entity_id or ""
    update = command(
        EntityType.CASE,
        CommandAction.UPDATE,
        case(
            status=CaseStatus.ON_HOLD,
            priority=Priority.URGENT,
            subject="Refund for order 1234 (escalated)",
            custom_fields={"360001000004": 4321},
        ),
        target=ticket_id,
        key="cmd-update",
        changed_fields=["status", "priority", "subject", "custom_fields.360001000004", "tags"],
        options={
            "tags_added": encode_list(["billing"]),
            "tags_removed": encode_list(["vip"]),
            "expect.status": "open",
            "expect.priority": "high",
        },
    )
    first = await zd.sink.execute(update)
    audits = len(zd.state.tickets[int(ticket_id)].audit_ids)
    del zd.requests[:]
    again = await zd.sink.execute(update.model_copy(update={"attempt": 2}))

    assert first.written
    assert not again.written
    assert zd.requests == [("GET", f"/api/v2/tickets/{ticket_id}")]
    assert again.api_calls == 1
    assert len(zd.state.tickets[int(ticket_id)].audit_ids) == audits
    assert again.fingerprints == first.fingerprints
    assert "already holds" in again.detail

    # A value the ticket no longer holds (a person changed it since) is written again.
    zd.state.tickets[int(ticket_id)].status = "open"
    del zd.requests[:]
    rewritten = await zd.sink.execute(update.model_copy(update={"attempt": 2}))
    assert rewritten.written
    assert [m for m, _ in zd.requests] == ["GET", "PUT"]
    assert zd.state.tickets[int(ticket_id)].status == "hold"


def _requester_name(user_id: str, name: str, **more: Any) -> SyncCommand:
    """The contact link's write of a requester's name after Zendesk's ``user.created``."""
    maria = Contact(emails=["maria@example.com"], name=name)
    return command(
        EntityType.CONTACT,
        CommandAction.UPDATE,
        maria,
        target=user_id,
        changed_fields=["name"],
        key="cmd-name",
        **more,
    )


async def _requester_of_a_new_ticket(zd: Connector) -> str:
    created = await zd.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
    return str(zd.state.tickets[int(created.target_entity_id or 0)].requester_id)


@pytest.mark.parametrize("attempt", [1, 2])
async def test_a_requester_name_the_case_create_set_is_not_written_again(
    zd: Connector, attempt: int
) -> None:
    """Issue 11: the case/upsert's ``create_or_update`` wrote the requester's name; the
    contact link, which never heard a name from Zendesk (``user.created`` has none), asks
    for it with ``unheard``: no ``PUT``, counted at the sandbox, on a retry too."""
    user_id = await _requester_of_a_new_ticket(zd)
    zd.requests.clear()
    unheard = {OPTION_UNHEARD: encode_list(["name"])}
    result = await zd.sink.execute(
        _requester_name(user_id, "Maria Lopez", options=unheard, attempt=attempt)
    )
    assert zd.requests == []
    assert (result.written, result.api_calls) == (False, 0)
    assert fingerprint("zendesk", user_id, "name", "Maria Lopez") in result.fingerprints
    assert zd.state.users[int(user_id)].name == "Maria Lopez"


async def test_a_contact_update_that_may_have_run_reads_the_user_and_writes_what_it_lacks(
    zd: Connector,
) -> None:
    """Run again after a crash between Zendesk's answer and the commit (attempt 2): a PUT of
    the values the user holds would count as a second write (the kill -9 soak caught one)."""
    user_id = await _requester_of_a_new_ticket(zd)
    first = await zd.sink.execute(_requester_name(user_id, "Maria Lopez"))
    zd.requests.clear()
    again = await zd.sink.execute(_requester_name(user_id, "Maria Lopez", attempt=2))
    assert (first.written, again.written) == (True, False)
    assert zd.requests == [("GET", f"/api/v2/users/{user_id}")]
    assert again.api_calls == 1
    assert "already holds name" in again.detail
    assert fingerprint("zendesk", user_id, "name", "Maria Lopez") in again.fingerprints

    # A value the user no longer holds (a person changed it since) is written again.
    zd.state.users[int(user_id)].name = "Someone Else"
    zd.requests.clear()
    rewritten = await zd.sink.execute(_requester_name(user_id, "Maria Lopez", attempt=2))
    assert rewritten.written
    assert [m for m, _ in zd.requests] == ["GET", "PUT"]
    assert zd.state.users[int(user_id)].name == "Maria Lopez"


async def test_a_name_heard_from_zendesk_or_another_name_is_written(zd: Connector) -> None:
    """The skip needs all three: the field unheard, this sink's own answer, the same value."""
    user_id = await _requester_of_a_new_ticket(zd)
    unheard = {OPTION_UNHEARD: encode_list(["name"])}
    zd.requests.clear()
    heard = await zd.sink.execute(_requester_name(user_id, "Maria Lopez"))  # no option
    other = await zd.sink.execute(_requester_name(user_id, "María López", options=unheard))
    assert zd.requests == [("PUT", f"/api/v2/users/{user_id}")] * 2
    assert (heard.written, other.written) == (True, True)
    assert zd.state.users[int(user_id)].name == "María López"


async def test_a_restarted_sink_writes_the_unheard_name_once(zendesk: ZendeskEnv) -> None:
    """The memory is this process's: after a restart the write goes out (redundant, never
    wrong), once, and its retry after a lost answer finds it held."""
    async for first in _connect(zendesk):
        user_id = await _requester_of_a_new_ticket(first)
    unheard = {OPTION_UNHEARD: encode_list(["name"])}
    async for again in _connect(zendesk):
        written = await again.sink.execute(_requester_name(user_id, "Maria Lopez", options=unheard))
        retried = await again.sink.execute(
            _requester_name(user_id, "Maria Lopez", options=unheard, attempt=2)
        )
        assert again.requests == [("PUT", f"/api/v2/users/{user_id}")]
        assert (written.written, retried.written) == (True, False)
