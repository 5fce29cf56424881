"""Cursor-based incremental ticket export: paging to end_of_stream, lag, deletes, limit."""

from __future__ import annotations

from tests.sandboxes.zendesk.conftest import ZendeskEnv

START = 1735689600  # 2025-01-01T00:00:00Z, the manual clock's start


async def export_all(env: ZendeskEnv, params: dict[str, str]) -> tuple[list[int], str]:
    ids: list[int] = []
    page = (await env.http.get("/api/v2/incremental/tickets/cursor.json", params=params)).json()
    while True:
        ids += [t["id"] for t in page["tickets"]]
        if page["end_of_stream"]:
            return ids, page["after_cursor"]
        page = (await env.http.get(page["after_url"])).json()


async def test_pages_to_end_of_stream_then_resumes_with_the_cursor(zendesk: ZendeskEnv) -> None:
    created = [(await zendesk.create_ticket(subject=f"t{i}"))["id"] for i in range(5)]
    zendesk.clock.advance(61)
    ids, cursor = await export_all(zendesk, {"start_time": str(START), "per_page": "2"})
    assert ids == created
    url = f"/api/v2/tickets/{created[1]}"
    await zendesk.http.put(url, json={"ticket": {"status": "solved"}})
    await zendesk.http.delete(f"/api/v2/tickets/{created[3]}")
    zendesk.clock.advance(61)
    page = (
        await zendesk.http.get("/api/v2/incremental/tickets/cursor", params={"cursor": cursor})
    ).json()
    assert [(t["id"], t["status"]) for t in page["tickets"]] == [
        (created[1], "solved"),
        (created[3], "deleted"),
    ]
    assert page["end_of_stream"] is True


async def test_most_recent_minute_is_held_back(zendesk: ZendeskEnv) -> None:
    zendesk.clock.advance(120)
    await zendesk.create_ticket()
    page = (
        await zendesk.http.get(
            "/api/v2/incremental/tickets/cursor", params={"start_time": str(START)}
        )
    ).json()
    assert (page["tickets"], page["end_of_stream"]) == ([], True)
    zendesk.clock.advance(60)
    page = (await zendesk.http.get(page["after_url"])).json()
    assert len(page["tickets"]) == 1


async def test_start_time_in_the_last_minute_is_refused(zendesk: ZendeskEnv) -> None:
    zendesk.clock.advance(30)
    response = await zendesk.http.get(
        "/api/v2/incremental/tickets/cursor", params={"start_time": str(START)}
    )
    assert response.status_code == 400


async def test_ten_requests_a_minute(zendesk: ZendeskEnv) -> None:
    zendesk.clock.advance(120)
    params = {"start_time": str(START)}
    statuses = [
        (await zendesk.http.get("/api/v2/incremental/tickets/cursor", params=params)).status_code
        for _ in range(11)
    ]
    assert statuses == [200] * 10 + [429]
    assert (await zendesk.http.get("/api/v2/tickets")).status_code == 200  # account limit intact
