"""The real, unmodified zenpy client against the sandbox (``ZENPY_FORCE_NETLOC`` and
``ZENPY_FORCE_SCHEME`` point it at the loopback port). zenpy is synchronous, so each call
runs in a worker thread while the sandbox serves on the test's event loop."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest

from tests.sandboxes.zendesk.conftest import EMAIL, TOKEN, ZendeskEnv

zenpy = pytest.importorskip("zenpy")
from zenpy import Zenpy  # type: ignore[import-untyped]  # noqa: E402
from zenpy.lib.api_objects import Comment, Ticket, User  # type: ignore[import-untyped]  # noqa: E402

T = TypeVar("T")


@pytest.fixture
def client(zendesk: ZendeskEnv, monkeypatch: pytest.MonkeyPatch) -> Zenpy:
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", urlparse(zendesk.url).netloc)
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    return Zenpy(subdomain=zendesk.sandbox.config.subdomain, email=EMAIL, token=TOKEN)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_users_tickets_comments_uploads_and_search(
    client: Zenpy, zendesk: ZendeskEnv
) -> None:
    user = await call(
        client.users.create_or_update,
        User(name="Lee", email="lee@example.com", external_id="crm-lee"),
    )
    assert (user.name, user.external_id) == ("Lee", "crm-lee")
    again = await call(client.users.create_or_update, User(name="Lee R", email="lee@example.com"))
    assert again.id == user.id

    upload = await call(
        client.attachments.upload,
        io.BytesIO(b"trace"),
        target_name="trace.txt",
        content_type="text/plain",
    )
    audit = await call(
        client.tickets.create,
        Ticket(
            subject="Broken checkout",
            requester_id=user.id,
            external_id="link-42",
            comment=Comment(body="Card declined", uploads=[upload.token]),
        ),
    )
    ticket = audit.ticket
    assert (ticket.status, ticket.requester_id) == ("new", user.id)
    assert audit.audit.author_id == zendesk.sandbox.core.integration_user.id

    ticket.comment = Comment(body="Escalated by the AI agent", public=False)
    ticket.priority = "high"
    updated = await call(client.tickets.update, ticket)
    assert updated.ticket.priority == "high"

    comments = list(await call(lambda: list(client.tickets.comments(ticket=ticket.id))))
    assert [(c.body, c.public) for c in comments] == [
        ("Card declined", True),
        ("Escalated by the AI agent", False),
    ]
    assert [a.file_name for a in comments[0].attachments] == ["trace.txt"]

    by_external = await call(lambda: list(client.users.search(external_id="crm-lee")))
    assert [u.id for u in by_external] == [user.id]
    by_email = await call(lambda: list(client.users.search(query="email:lee@example.com")))
    assert [u.id for u in by_email] == [user.id]
    tickets = await call(lambda: list(client.tickets(external_id="link-42")))
    assert [t.id for t in tickets] == [ticket.id]
    me = await call(client.users.me)
    assert me.email == EMAIL


async def test_listing_follows_cursor_links(client: Zenpy, zendesk: ZendeskEnv) -> None:
    for i in range(3):
        await zendesk.create_ticket(subject=f"t{i}")
    subjects = await call(lambda: [t.subject for t in client.tickets(cursor_pagination=2)])
    assert subjects == ["t0", "t1", "t2"]


async def test_incremental_export_pages_to_the_end(client: Zenpy, zendesk: ZendeskEnv) -> None:
    created = [(await zendesk.create_ticket(subject=f"t{i}"))["id"] for i in range(3)]
    zendesk.clock.advance(120)
    exported = await call(
        lambda: [t.id for t in client.tickets.incremental(start_time=1735689600, per_page=2)]
    )
    assert exported == created
