"""The Intercom sink against the real Intercom sandbox: replies and notes (with their echo),
idempotent retries, status, tags and attributes; and what each command costs in API calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.base.commands import encode_list
from connectors.base.fingerprints import fingerprint
from connectors.intercom.sink import IntercomSink
from sandboxes.base import ManualClock
from schemas.errors import FatalAPIError, RateLimitedError, RetriableAPIError
from schemas.models import ActorKind, Attachment, Case, CaseStatus, EntityType, Message
from tests.connectors.intercom.sink_env import (
    AGENT,
    Connector,
    bot_parts,
    connector_env,
    new_parts,
)


@pytest.fixture
async def connector(clock: ManualClock) -> AsyncIterator[Connector]:
    async with connector_env(clock) as env:
        yield env


# -- message/append -----------------------------------------------------------------------------


async def test_a_public_message_is_a_bot_reply_and_its_echo_is_recognised(
    connector: Connector,
) -> None:
    _, cid = await connector.conversation()
    message = connector.message("On it, replacing the toner")
    command = connector.command(
        EntityType.MESSAGE,
        "append",
        message,
        entity_id=cid,
        options={"source_platform": "zendesk"},
    )
    result = await connector.sink.execute(command)
    assert (result.written, result.api_calls, result.target_entity_id) == (True, 1, cid)

    (part,) = bot_parts(await connector.get(f"/conversations/{cid}"), "comment")
    assert "Zed Agent (agent) · 2025-01-01 00:00 UTC · via Zendesk" in part["body"]
    assert "On it, replacing the toner" in part["body"]
    assert result.created_ids == {"message": part["id"]}  # the sync stage's name for it

    (event,) = new_parts(await connector.events())
    assert event.source.entity_id == part["id"]
    assert event.source.actor.kind is ActorKind.INTEGRATION  # layer one: our bot admin
    assert isinstance(event.data, Message)
    assert event.data.public
    # layer two: the fingerprint the sink reported is the one the echo carries
    assert fingerprint("intercom", cid, "message", event.data.body_text) in result.fingerprints


async def test_a_private_message_is_a_note_and_stays_private(connector: Connector) -> None:
    _, cid = await connector.conversation()
    command = connector.command(
        EntityType.MESSAGE,
        "append",
        connector.message("Escalated: VIP", public=False),
        entity_id=cid,
    )
    result = await connector.sink.execute(command)
    assert result.written
    assert len(bot_parts(await connector.get(f"/conversations/{cid}"), "note")) == 1
    (event,) = new_parts(await connector.events())
    assert event.source.event_type == "conversation.admin.noted"
    assert isinstance(event.data, Message)
    assert not event.data.public
    assert event.source.actor.kind is ActorKind.INTEGRATION


async def test_attachments_go_as_urls_and_none_is_dropped(connector: Connector) -> None:
    _, cid = await connector.conversation()
    attachments = [
        Attachment(
            name=f"shot{i}.png", content_type="image/png", source_url=f"https://f.example/s{i}.png"
        )
        for i in range(11)
    ]
    message = connector.message("Screens", attachments=attachments)
    await connector.sink.execute(
        connector.command(EntityType.MESSAGE, "append", message, entity_id=cid)
    )
    (part,) = bot_parts(await connector.get(f"/conversations/{cid}"), "comment")
    assert [a["url"] for a in part["attachments"]] == [a.source_url for a in attachments[:10]]
    assert "https://f.example/s10.png" in part["body"]  # the eleventh, as a link


async def test_a_retried_append_does_not_post_twice(connector: Connector) -> None:
    _, cid = await connector.conversation()
    first = connector.command(
        EntityType.MESSAGE, "append", connector.message("Once only"), entity_id=cid, key="k-once"
    )
    assert (await connector.sink.execute(first)).written
    retried = first.model_copy(update={"attempt": 2})
    result = await connector.sink.execute(retried)
    assert (result.written, result.api_calls) == (False, 1)  # one read, no second reply
    assert len(bot_parts(await connector.get(f"/conversations/{cid}"), "comment")) == 1
    assert result.fingerprints == (await connector.sink.execute(retried)).fingerprints


async def test_a_retried_append_that_never_landed_is_written(connector: Connector) -> None:
    _, cid = await connector.conversation()
    command = connector.command(
        EntityType.MESSAGE, "append", connector.message("Lost once"), entity_id=cid, attempt=2
    )
    result = await connector.sink.execute(command)
    assert (result.written, result.api_calls) == (True, 2)
    assert len(bot_parts(await connector.get(f"/conversations/{cid}"), "comment")) == 1


async def test_checking_every_append_costs_a_read_each_time(connector: Connector) -> None:
    _, cid = await connector.conversation()
    sink = IntercomSink(connector_id="ic", settings=connector.settings, check_appends="always")
    command = connector.command(
        EntityType.MESSAGE, "append", connector.message("Careful"), entity_id=cid
    )
    first, replay = await sink.execute(command), await sink.execute(command)  # a crash replay
    await sink.aclose()
    assert (first.written, first.api_calls) == (True, 2)
    assert (replay.written, replay.api_calls) == (False, 1)
    assert len(bot_parts(await connector.get(f"/conversations/{cid}"), "comment")) == 1


class _LoseTheFirstReplyAnswer(httpx.AsyncBaseTransport):
    """Forwards every request, but after the first reply lands, answers with a timeout."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/reply") and not self.lost:
            self.lost = True
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_append_whose_answer_was_lost_is_checked_before_it_is_retried(
    connector: Connector,
) -> None:
    _, cid = await connector.conversation()
    http = httpx.AsyncClient(
        base_url=connector.settings.api_base_url or "", transport=_LoseTheFirstReplyAnswer()
    )
    sink = IntercomSink(connector_id="ic", settings=connector.settings, http=http)
    command = connector.command(
        EntityType.MESSAGE, "append", connector.message("Did it land?"), entity_id=cid
    )
    with pytest.raises(RetriableAPIError):
        await sink.execute(command)
    # The same command again, still attempt 1 (the retry loop re-runs it as it is).
    result = await sink.execute(command)
    await sink.aclose()
    assert (result.written, result.api_calls) == (False, 1)
    assert len(bot_parts(await connector.get(f"/conversations/{cid}"), "comment")) == 1


async def test_append_without_a_conversation_is_fatal(connector: Connector) -> None:
    command = connector.command(EntityType.MESSAGE, "append", connector.message("x"))
    with pytest.raises(FatalAPIError, match="names no Intercom record"):
        await connector.sink.execute(command)


# -- case/update --------------------------------------------------------------------------------


async def test_close_and_reopen_round_trip(connector: Connector) -> None:
    _, cid = await connector.conversation()
    for wanted, state, topic in [
        (CaseStatus.SOLVED, "closed", "conversation.admin.closed"),
        (CaseStatus.OPEN, "open", "conversation.admin.opened"),
    ]:
        command = connector.command(
            EntityType.CASE, "update", Case(status=wanted), entity_id=cid, changed=["status"]
        )
        result = await connector.sink.execute(command)
        assert (result.written, result.api_calls) == (True, 1)
        assert (await connector.get(f"/conversations/{cid}"))["state"] == state
        (echo,) = [e for e in await connector.events() if isinstance(e.data, Case)]
        assert echo.source.event_type == topic
        assert echo.source.actor.kind is ActorKind.INTEGRATION
        assert isinstance(echo.data, Case)
        assert fingerprint("intercom", cid, "status", echo.data.status.value) in result.fingerprints


async def test_pending_snoozes_only_when_configured(connector: Connector) -> None:
    _, cid = await connector.conversation()
    pending = Case(status=CaseStatus.PENDING)
    left = await connector.sink.execute(
        connector.command(EntityType.CASE, "update", pending, entity_id=cid, changed=["status"])
    )
    assert (left.written, left.api_calls) == (False, 0)
    assert "snoozing not configured" in left.detail
    snoozed = await connector.sink.execute(
        connector.command(
            EntityType.CASE,
            "update",
            pending,
            entity_id=cid,
            changed=["status"],
            options={"snooze_seconds": "3600"},
        )
    )
    conversation = await connector.get(f"/conversations/{cid}")
    assert conversation["state"] == "snoozed"
    assert conversation["snoozed_until"] == int(connector.clock.now().timestamp()) + 3600
    assert fingerprint("intercom", cid, "status", "pending") in snoozed.fingerprints


async def test_tags_are_added_and_removed_by_name(connector: Connector) -> None:
    _, cid = await connector.conversation()
    vip = await connector.post("/tags", {"name": "vip"})
    await connector.post(f"/conversations/{cid}/tags", {"id": vip["id"], "admin_id": AGENT})
    await connector.events()
    options = {
        "tags_added": encode_list(["billing", "escalate"]),
        "tags_removed": encode_list(["vip", "never-applied"]),
    }
    case = Case(status=CaseStatus.OPEN, tags=["billing", "escalate"])
    command = connector.command(
        EntityType.CASE, "update", case, entity_id=cid, changed=["tags"], options=options
    )
    result = await connector.sink.execute(command)
    conversation = await connector.get(f"/conversations/{cid}")
    assert sorted(t["name"] for t in conversation["tags"]["tags"]) == ["billing", "escalate"]
    workspace = {t["name"] for t in (await connector.get("/tags"))["data"]}
    assert workspace == {"vip", "billing", "escalate"}  # created the missing, not "never-applied"
    # read the conversation, read the tag list, create two tags, apply two, remove one
    assert (result.written, result.api_calls) == (True, 7)
    echoes = [
        e
        for e in await connector.events()
        if e.source.event_type.endswith("tag.created") and isinstance(e.data, Case)
    ]
    assert echoes
    for echo in echoes:
        assert echo.source.actor.kind is ActorKind.INTEGRATION
        assert isinstance(echo.data, Case)
        assert fingerprint("intercom", cid, "tags", echo.data.tags) in result.fingerprints
    assert fingerprint("intercom", cid, "tags", ["billing", "escalate"]) in result.fingerprints
    again = await connector.sink.execute(command)
    assert (again.written, again.api_calls) == (False, 1)  # the read shows nothing to do


async def test_subject_and_custom_fields_are_written(connector: Connector) -> None:
    _, cid = await connector.conversation()
    case = Case(status=CaseStatus.OPEN, subject="Printer on fire", custom_fields={"region": "EMEA"})
    result = await connector.sink.execute(
        connector.command(
            EntityType.CASE, "update", case, entity_id=cid, changed=["subject", "custom_fields"]
        )
    )
    conversation = await connector.get(f"/conversations/{cid}")
    assert (conversation["title"], conversation["custom_attributes"]) == (
        "Printer on fire",
        {"region": "EMEA"},
    )
    assert result.api_calls == 1
    assert fingerprint("intercom", cid, "subject", "Printer on fire") in result.fingerprints
    assert fingerprint("intercom", cid, "custom_fields.region", "EMEA") in result.fingerprints
    unknown = Case(status=CaseStatus.OPEN, custom_fields={"sla": "gold"})
    with pytest.raises(FatalAPIError, match="fix the mapping"):
        await connector.sink.execute(
            connector.command(
                EntityType.CASE, "update", unknown, entity_id=cid, changed=["custom_fields"]
            )
        )


async def test_an_update_run_again_after_a_crash_writes_nothing(connector: Connector) -> None:
    # kill -9 between Intercom's answer and the commit: the next owner runs the case/update
    # again (attempt 2). A second close would add a part and notify; the conversation holds
    # every value, so the repeat costs one read, writes nothing and reports what it holds.
    _, cid = await connector.conversation()
    case = Case(
        status=CaseStatus.SOLVED,
        subject="Printer on fire",
        custom_fields={"region": "EMEA"},
        tags=["billing"],
    )
    update = connector.command(
        EntityType.CASE,
        "update",
        case,
        entity_id=cid,
        changed=["status", "subject", "custom_fields", "tags"],
        options={"tags_added": encode_list(["billing"])},
    )
    first = await connector.sink.execute(update)
    before = await connector.get(f"/conversations/{cid}")
    await connector.events()
    again = await connector.sink.execute(update.model_copy(update={"attempt": 2}))

    assert first.written
    assert not again.written
    assert again.api_calls == 1  # the read
    assert await connector.get(f"/conversations/{cid}") == before
    assert await connector.events() == []  # no notification
    assert sorted(again.fingerprints) == sorted(first.fingerprints)
    assert "already holds" in again.detail

    reopen = {"message_type": "open", "type": "admin", "admin_id": AGENT}
    await connector.post(f"/conversations/{cid}/parts", reopen)  # an agent reopens it since
    reclosed = await connector.sink.execute(update.model_copy(update={"attempt": 2}))
    assert reclosed.written
    assert (await connector.get(f"/conversations/{cid}"))["state"] == "closed"


async def test_a_429_after_the_close_landed_does_not_close_twice(connector: Connector) -> None:
    """The close lands and the tag call after it answers 429: the runner retries at attempt 1
    (a 429 writes nothing itself), but this command had already written, so the retry must
    read first. A second close would add a part and notify the customer's inbox again."""
    _, cid = await connector.conversation()
    update = connector.command(
        EntityType.CASE,
        "update",
        Case(status=CaseStatus.SOLVED, tags=["billing"]),
        entity_id=cid,
        changed=["status", "tags"],
        options={"tags_added": encode_list(["billing"])},
    )
    # Request 0 (the close) passes, request 1 (the tag) is refused with a 429.
    burst = {"burst_429_every": 1, "burst_429_length": 1, "burst_429_retry_after_s": 0.0}
    assert (await connector.api.put("/_sandbox/faults", json=burst)).status_code == 200
    with pytest.raises(RateLimitedError):
        await connector.sink.execute(update)
    assert (
        await connector.api.put("/_sandbox/faults", json={"profile": "none"})
    ).status_code == 200
    assert (await connector.get(f"/conversations/{cid}"))["state"] == "closed"
    await connector.events()

    retry = await connector.sink.execute(update)  # the runner's retry after a 429: attempt 1

    assert retry.written  # the tag was still missing
    closes = [
        e for e in await connector.events() if e.source.event_type == "conversation.admin.closed"
    ]
    assert closes == []
    conversation = await connector.get(f"/conversations/{cid}")
    parts = conversation["conversation_parts"]["conversation_parts"]
    assert sum(p["part_type"] == "close" for p in parts) == 1
    assert [t["name"] for t in conversation["tags"]["tags"]] == ["billing"]
