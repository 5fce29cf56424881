"""The official ``python-intercom`` SDK (unmodified, async) drives the sandbox end to end."""

from __future__ import annotations

import pytest
from intercom import (
    AdminReplyConversationRequest,
    AsyncIntercom,
    ContactReplyIntercomUserIdRequest,
    CreateContactRequestWithEmail,
    CreateContactRequestWithExternalId,
    MultipleFilterSearchRequest,
    SingleFilterSearchRequest,
    StartingAfterPaging,
)
from intercom.conversations import (
    ConversationsManageRequestBody_Assignment,
    ConversationsManageRequestBody_Close,
    ConversationsManageRequestBody_Open,
    ConversationsManageRequestBody_Snoozed,
    CreateConversationRequestFrom,
)
from intercom.core.api_error import ApiError
from intercom.errors.unauthorized_error import UnauthorizedError

from tests.sandboxes.intercom.conftest import TOKEN, IntercomEnv


@pytest.fixture
async def client(intercom: IntercomEnv) -> AsyncIntercom:
    return AsyncIntercom(token=TOKEN, base_url=intercom.url)


async def _admin_id(client: AsyncIntercom) -> str:
    admins = await client.admins.list()
    assert admins.admins
    admin = admins.admins[1]
    assert admin is not None
    return str(admin.id)


async def test_contact_lifecycle(client: AsyncIntercom, intercom: IntercomEnv) -> None:
    created = await client.contacts.create(
        request=CreateContactRequestWithEmail(email="Ada@Example.com", name="Ada")
    )
    assert created.id
    assert created.role == "user"
    assert created.email == "Ada@Example.com"

    intercom.clock.advance(60)
    updated = await client.contacts.update(created.id, external_id="crm-42", phone="+4411")
    assert updated.external_id == "crm-42"
    assert updated.phone == "+4411"
    assert updated.updated_at == created.updated_at + 60

    found = await client.contacts.find(created.id)
    assert found.name == "Ada"
    assert found.external_id == "crm-42"

    by_external = await client.contacts.show_contact_by_external_id("crm-42")
    assert by_external.id == created.id

    # The SDK maps no 404 for this operation (the spec lists none), so it raises ApiError.
    with pytest.raises(ApiError) as raised:
        await client.contacts.show_contact_by_external_id("nobody")
    assert raised.value.status_code == 404
    with pytest.raises(ApiError) as missing:
        await client.contacts.find("0" * 24)
    assert missing.value.status_code == 404
    assert missing.value.body["errors"][0] == {"code": "not_found", "message": "User Not Found"}


async def test_duplicate_external_id_is_a_conflict(client: AsyncIntercom) -> None:
    await client.contacts.create(request=CreateContactRequestWithExternalId(external_id="e-1"))
    with pytest.raises(ApiError) as raised:
        await client.contacts.create(request=CreateContactRequestWithExternalId(external_id="e-1"))
    assert raised.value.status_code == 409
    assert raised.value.body["errors"][0]["code"] == "conflict"


async def test_contact_search_by_email_external_id_and_updated_at(
    client: AsyncIntercom, intercom: IntercomEnv
) -> None:
    ids = []
    for n in range(7):
        contact = await client.contacts.create(
            request=CreateContactRequestWithEmail(email=f"user{n}@example.com")
        )
        ids.append(contact.id)
    await client.contacts.update(ids[3], external_id="crm-3")
    by_email = await client.contacts.search(
        query=SingleFilterSearchRequest(field="email", operator="=", value="USER5@example.com")
    )
    assert [c.id for c in by_email.items or []] == [ids[5]]
    by_external = await client.contacts.search(
        query=SingleFilterSearchRequest(field="external_id", operator="=", value="crm-3")
    )
    assert [c.id for c in by_external.items or []] == [ids[3]]

    # Contact dates match by calendar day: "> yesterday" is everything from today on.
    yesterday = int(intercom.clock.now().timestamp()) - 86_400
    query = MultipleFilterSearchRequest(
        operator="AND",
        value=[
            SingleFilterSearchRequest(field="updated_at", operator=">", value=yesterday),
            SingleFilterSearchRequest(field="email", operator="$", value="@example.com"),
        ],
    )
    pages = []
    cursor: str | None = None
    while True:
        page = await client.contacts.search(
            query=query, pagination=StartingAfterPaging(per_page=3, starting_after=cursor)
        )
        pages.append([c.id for c in page.items or []])
        following = page.response.pages.next if page.response.pages else None
        if following is None:
            break
        cursor = following.starting_after
    assert pages == [ids[0:3], ids[3:6], ids[6:]]


async def test_conversation_flow(client: AsyncIntercom, intercom: IntercomEnv) -> None:
    admin_id = await _admin_id(client)
    contact = await client.contacts.create(
        request=CreateContactRequestWithEmail(email="c@example.com")
    )
    message = await client.conversations.create(
        from_=CreateConversationRequestFrom(type="user", id=contact.id), body="My order is late"
    )
    assert message.conversation_id
    conversation_id = message.conversation_id

    await client.conversations.reply(
        conversation_id,
        request=AdminReplyConversationRequest(
            message_type="comment", admin_id=admin_id, body="Looking into it"
        ),
    )
    await client.conversations.reply(
        conversation_id,
        request=AdminReplyConversationRequest(
            message_type="note", admin_id=admin_id, body="carrier delay"
        ),
    )
    await client.conversations.reply(
        conversation_id,
        request=ContactReplyIntercomUserIdRequest(
            intercom_user_id=contact.id,
            body="Thanks",
            attachment_urls=["https://files.example.com/receipt.pdf"],
        ),
    )
    await client.conversations.manage(
        conversation_id,
        request=ConversationsManageRequestBody_Assignment(
            type="admin", admin_id=admin_id, assignee_id=admin_id
        ),
    )
    snooze_until = int(intercom.clock.now().timestamp()) + 3600
    snoozed = await client.conversations.manage(
        conversation_id,
        request=ConversationsManageRequestBody_Snoozed(
            admin_id=admin_id, snoozed_until=snooze_until
        ),
    )
    assert snoozed.state == "snoozed"
    assert snoozed.snoozed_until == snooze_until
    await client.conversations.manage(
        conversation_id, request=ConversationsManageRequestBody_Open(admin_id=admin_id)
    )
    closed = await client.conversations.manage(
        conversation_id,
        request=ConversationsManageRequestBody_Close(admin_id=admin_id, body="Delivered"),
    )
    assert closed.state == "closed"
    assert closed.open is False

    conversation = await client.conversations.find(conversation_id)
    assert conversation.conversation_parts is not None
    parts = conversation.conversation_parts.conversation_parts or []
    assert [p.part_type for p in parts] == [
        "comment",
        "note",
        "comment",
        "assignment",
        "snoozed",
        "open",
        "close",
    ]
    assert [p.author.type for p in parts] == [
        "admin",
        "admin",
        "user",
        "admin",
        "admin",
        "admin",
        "admin",
    ]
    attachment = (parts[2].attachments or [])[0]
    assert attachment.url == "https://files.example.com/receipt.pdf"
    assert attachment.content_type == "application/pdf"
    assert conversation.admin_assignee_id == int(admin_id)


async def test_tags_and_custom_attributes(client: AsyncIntercom, intercom: IntercomEnv) -> None:
    intercom.sandbox.state.config.custom_attributes["conversation"]["ticket_ref"] = "string"
    intercom.sandbox.reset()
    admin_id = await _admin_id(client)
    contact = await client.contacts.create(
        request=CreateContactRequestWithEmail(email="t@example.com")
    )
    message = await client.conversations.create(
        from_=CreateConversationRequestFrom(type="user", id=contact.id), body="hi"
    )
    assert message.conversation_id
    tag = await client.tags.create(request={"name": "urgent"})
    await client.tags.tag_conversation(message.conversation_id, tag_id=tag.id, admin_id=admin_id)
    updated = await client.conversations.update(
        message.conversation_id, custom_attributes={"ticket_ref": "ZD-9"}
    )
    assert updated.custom_attributes == {"ticket_ref": "ZD-9"}
    assert [t.name for t in (updated.tags.tags if updated.tags else [])] == ["urgent"]
    await client.tags.untag_conversation(message.conversation_id, tag_id=tag.id, admin_id=admin_id)
    after = await client.conversations.find(message.conversation_id)
    assert after.tags is not None
    assert after.tags.tags == []
    with pytest.raises(ApiError) as raised:
        await client.conversations.update(
            message.conversation_id, custom_attributes={"never_created": "x"}
        )
    assert raised.value.status_code == 400


async def test_conversation_search_by_updated_at(
    client: AsyncIntercom, intercom: IntercomEnv
) -> None:
    contact = await client.contacts.create(
        request=CreateContactRequestWithEmail(email="s@example.com")
    )
    ids = []
    for n in range(4):
        message = await client.conversations.create(
            from_=CreateConversationRequestFrom(type="user", id=contact.id), body=f"m{n}"
        )
        ids.append(message.conversation_id)
        intercom.clock.advance(100)
    cutoff = int(intercom.clock.now().timestamp()) - 200  # the third conversation's time
    found = await client.conversations.search(
        query=SingleFilterSearchRequest(field="updated_at", operator=">", value=cutoff),
        pagination=StartingAfterPaging(per_page=5),
    )
    # Conversation search compares full timestamps and its ">" is inclusive.
    assert [c.id for c in found.items or []] == ids[2:]


async def test_wrong_token_is_unauthorized(intercom: IntercomEnv) -> None:
    stranger = AsyncIntercom(token="not-a-token", base_url=intercom.url)
    with pytest.raises(UnauthorizedError):
        await stranger.admins.list()


async def test_sdk_search_pager_does_not_advance_its_cursor(
    client: AsyncIntercom, intercom: IntercomEnv
) -> None:
    """python-intercom 5.0.1's search pager re-sends the first request for every next page
    (it drops ``starting_after``), so ``async for`` over a multi-page search never ends.
    The sandbox paginates correctly (see the manual loop above); this pins the SDK defect so
    a fixed SDK release shows up here and the manual loops can go."""
    for n in range(3):
        await client.contacts.create(request=CreateContactRequestWithEmail(email=f"p{n}@x.io"))
    pager = await client.contacts.search(
        query=SingleFilterSearchRequest(field="email", operator="$", value="@x.io"),
        pagination=StartingAfterPaging(per_page=2),
    )
    second = await pager.next_page()
    assert second is not None
    assert [c.id for c in second.items or []] == [c.id for c in pager.items or []]
