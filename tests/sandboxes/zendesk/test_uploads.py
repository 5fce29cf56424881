"""Uploads: raw body in, token out, attach to a comment, bytes served at content_url."""

from __future__ import annotations

import httpx

from tests.sandboxes.zendesk.conftest import ZendeskEnv

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8000  # ~2 MB: above aiohttp's default limit


async def upload(
    env: ZendeskEnv, name: str, data: bytes, token: str | None = None
) -> httpx.Response:
    params = {"filename": name, **({"token": token} if token else {})}
    return await env.http.post(
        "/api/v2/uploads.json", params=params, content=data, headers={"Content-Type": "image/png"}
    )


async def test_upload_attach_and_download(zendesk: ZendeskEnv) -> None:
    first = await upload(zendesk, "crash.png", PNG)
    assert first.status_code == 201
    token = first.json()["upload"]["token"]
    second = await upload(zendesk, "log.png", b"tiny", token)
    assert second.json()["upload"]["token"] == token
    assert [a["file_name"] for a in second.json()["upload"]["attachments"]] == [
        "crash.png",
        "log.png",
    ]
    ticket = await zendesk.create_ticket(comment={"body": "see files", "uploads": [token]})
    comments = (await zendesk.http.get(f"/api/v2/tickets/{ticket['id']}/comments")).json()
    attachments = comments["comments"][0]["attachments"]
    assert [(a["file_name"], a["size"], a["content_type"]) for a in attachments] == [
        ("crash.png", len(PNG), "image/png"),
        ("log.png", 4, "image/png"),
    ]
    async with httpx.AsyncClient() as anonymous:  # content URLs need no credentials
        content = await anonymous.get(attachments[0]["content_url"])
    assert content.content == PNG


async def test_expired_token_is_not_attached(zendesk: ZendeskEnv) -> None:
    token = (await upload(zendesk, "a.png", b"x")).json()["upload"]["token"]
    zendesk.clock.advance(60 * 60)
    ticket = await zendesk.create_ticket(comment={"body": "late", "uploads": [token]})
    comments = (await zendesk.http.get(f"/api/v2/tickets/{ticket['id']}/comments")).json()
    assert comments["comments"][0]["attachments"] == []
    reuse = await upload(zendesk, "b.png", b"y", token)
    assert reuse.status_code == 404


async def test_token_is_consumed_by_the_first_comment(zendesk: ZendeskEnv) -> None:
    token = (await upload(zendesk, "a.png", b"x")).json()["upload"]["token"]
    await zendesk.create_ticket(comment={"body": "one", "uploads": [token]})
    second = await zendesk.create_ticket(comment={"body": "two", "uploads": [token]})
    comments = (await zendesk.http.get(f"/api/v2/tickets/{second['id']}/comments")).json()
    assert comments["comments"][0]["attachments"] == []


async def test_filename_is_required(zendesk: ZendeskEnv) -> None:
    response = await zendesk.http.post("/api/v2/uploads", content=b"x")
    assert response.status_code == 400
    assert response.json()["error"] == "ParameterMissing"
