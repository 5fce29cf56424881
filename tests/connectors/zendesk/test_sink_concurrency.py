"""The Zendesk sink's case/update with optimistic concurrency, against the sandbox: a field
with ``expect.<field>`` is written with ``safe_update`` and only while the ticket still holds
the expected value; a person's change made after the sync stage decided is never overwritten.

A person is an agent signed in with their own credential (``ZendeskAgent``). The sandbox's
clock moves only when told, and Zendesk stamps ``updated_at`` in whole seconds, so every
change that must be told apart from the one before it comes after ``clock.advance``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from connectors.base.commands import (
    OPTION_EXPECT_PREFIX,
    OPTION_TAGS_ADDED,
    OPTION_UPDATED_STAMP,
    encode_list,
)
from connectors.base.fingerprints import fingerprint
from connectors.zendesk.sink import ZendeskSink
from sandboxes.base import ManualClock
from sandboxes.zendesk import ZendeskSandboxConfig
from sandboxes.zendesk.actors import ZendeskAgent, api_token_auth, zendesk_http
from schemas.errors import RetriableAPIError
from schemas.models import CaseStatus, CommandAction, EntityType, Priority, SyncCommand
from tests.connectors.zendesk.test_sink import CUSTOMER, case, command, message, upsert
from tests.sandboxes.zendesk.conftest import TOKEN, ZendeskEnv

ADMIN_EMAIL = ZendeskSandboxConfig().admin_email
LEFT_OUT = "left out: changed on Zendesk to {now} after the sync decided (expected {expected})"


@dataclass
class Desk:
    env: ZendeskEnv
    sink: ZendeskSink
    agent: ZendeskAgent
    clock: ManualClock
    http: httpx.AsyncClient
    #: every request the sink sent: (method, path, JSON body or None)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def ticket(self, ticket_id: str) -> Any:
        return self.env.sandbox.core.state.tickets[int(ticket_id)]

    def calls(self) -> list[str]:
        return [method for method, _, _ in self.requests]

    def puts(self) -> list[dict[str, Any]]:
        return [body["ticket"] for method, _, body in self.requests if method == "PUT"]

    async def created_by_sink(self) -> str:
        """A ticket the sink created (status open, priority high, tags refund + vip): the sink
        has seen its version. Then time passes, so the next change gets a new stamp."""
        created = await self.sink.execute(upsert([message(CUSTOMER, "Hello", 0)]))
        assert created.target_entity_id is not None
        self.clock.advance(60)
        self.requests.clear()
        return created.target_entity_id

    async def person(self, ticket_id: str, change: dict[str, Any]) -> None:
        """An agent edits the ticket after the sync stage decided, a minute later."""
        await self.agent.update(int(ticket_id), change)
        self.clock.advance(60)


@pytest.fixture
async def desk(zendesk: ZendeskEnv) -> AsyncIterator[Desk]:
    settings = zendesk.connector_settings()
    seen: list[tuple[str, str, Any]] = []

    async def record(request: httpx.Request) -> None:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))

    async with (
        httpx.AsyncClient(event_hooks={"request": [record]}) as http,
        zendesk_http(zendesk.url, api_token_auth(ADMIN_EMAIL, TOKEN)) as agent_http,
    ):
        sink = ZendeskSink(connector_id="zd", settings=settings, http=http)
        yield Desk(zendesk, sink, ZendeskAgent(agent_http), zendesk.clock, http, seen)
        await sink.aclose()


def update(
    ticket_id: str, data: dict[str, Any], *, key: str = "upd-1", **options: str
) -> SyncCommand:
    """A case/update of ``data``'s fields; ``expect_status="open"`` → ``expect.status``."""
    named = {k.replace("expect_", OPTION_EXPECT_PREFIX, 1): v for k, v in options.items()}
    return command(
        EntityType.CASE,
        CommandAction.UPDATE,
        case(**data),
        target=ticket_id,
        key=key,
        changed_fields=[*data, *(["tags"] if OPTION_TAGS_ADDED in named else [])],
        options=named,
    )


def status_update(ticket_id: str, status: CaseStatus, **options: str) -> SyncCommand:
    return update(ticket_id, {"status": status}, **options)


# -- (a) a known stamp: one PUT --------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["rest", "webhook"])
async def test_a_write_with_expectations_and_a_fresh_stamp_is_one_safe_put(
    desk: Desk, spelling: str
) -> None:
    """The planner's stamp (REST spelling, or a webhook's nanoseconds) is enough: no read."""
    made = await desk.env.create_ticket(status="open", priority="high")
    ticket_id, stamp = str(made["id"]), made["updated_at"]
    if spelling == "webhook":
        stamp = stamp.replace("Z", ".000000000Z")
    desk.clock.advance(60)
    options = {"expect_status": "open", OPTION_UPDATED_STAMP: stamp}
    result = await desk.sink.execute(status_update(ticket_id, CaseStatus.PENDING, **options))
    assert desk.calls() == ["PUT"]
    assert result.api_calls == 1
    assert desk.puts()[0] == {
        "status": "pending",
        "safe_update": True,
        "updated_stamp": made["updated_at"],
    }
    assert desk.ticket(ticket_id).status == "pending"
    assert result.written
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "status", "pending")]
    assert "left out" not in result.detail


async def test_without_a_known_stamp_the_ticket_is_read_first(desk: Desk) -> None:
    made = await desk.env.create_ticket(status="open", priority="high")
    ticket_id = str(made["id"])
    desk.clock.advance(60)
    result = await desk.sink.execute(
        status_update(ticket_id, CaseStatus.PENDING, expect_status="open")
    )
    assert desk.calls() == ["GET", "PUT"]
    assert result.api_calls == 2
    assert desk.puts()[0]["updated_stamp"] == made["updated_at"]
    assert desk.ticket(ticket_id).status == "pending"


# -- (b) a person's change is not overwritten ------------------------------------------------


async def test_a_persons_status_change_is_kept_and_the_tag_delta_still_applied(
    desk: Desk,
) -> None:
    ticket_id = await desk.created_by_sink()
    await desk.person(ticket_id, {"status": "solved"})  # after the planner decided on "open"
    tags = {OPTION_TAGS_ADDED: encode_list(["billing"])}
    made = update(ticket_id, {"status": CaseStatus.PENDING}, expect_status="open", **tags)
    result = await desk.sink.execute(made)
    ticket = desk.ticket(ticket_id)
    assert ticket.status == "solved"  # the person's value stands
    assert "billing" in ticket.tags
    assert desk.calls() == ["PUT", "GET", "PUT"]
    assert result.api_calls == 3
    assert desk.puts()[1] == {"additional_tags": ["billing"]}  # nothing left to compare
    assert result.written
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "tags", ticket.tags)]
    said = "status " + LEFT_OUT.format(now="solved", expected="open")
    assert said in result.detail
    assert "the sync stage decides again when that change arrives" in result.detail


async def test_each_field_is_decided_on_its_own(desk: Desk) -> None:
    """The person changed status; the priority the planner expected is still there, so it is
    written, still compare-and-set, with the fresh stamp."""
    ticket_id = await desk.created_by_sink()
    await desk.person(ticket_id, {"status": "hold"})
    fresh_stamp = (await desk.agent.ticket(int(ticket_id)))["updated_at"]
    data = {"status": CaseStatus.SOLVED, "priority": Priority.URGENT}
    made = update(ticket_id, data, expect_status="open", expect_priority="high")
    result = await desk.sink.execute(made)
    ticket = desk.ticket(ticket_id)
    assert (ticket.status, ticket.priority) == ("hold", "urgent")
    assert desk.puts()[1] == {
        "priority": "urgent",
        "safe_update": True,
        "updated_stamp": fresh_stamp,
    }
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "priority", "urgent")]
    assert "status " + LEFT_OUT.format(now="on_hold", expected="open") in result.detail
    assert "priority left out" not in result.detail


async def test_when_every_field_is_left_out_nothing_is_written(desk: Desk) -> None:
    ticket_id = await desk.created_by_sink()
    await desk.person(ticket_id, {"status": "solved"})
    result = await desk.sink.execute(
        status_update(ticket_id, CaseStatus.PENDING, expect_status="open")
    )
    assert desk.calls() == ["PUT", "GET"]  # no PUT after the re-read
    assert (result.written, result.fingerprints, result.api_calls) == (False, [], 2)
    assert desk.ticket(ticket_id).status == "solved"
    assert "status " + LEFT_OUT.format(now="solved", expected="open") in result.detail


async def test_a_cached_version_that_contradicts_the_expectation_is_checked(desk: Desk) -> None:
    """The sink saw the ticket open at its newest version; the planner expected pending. The
    stamp alone would let the write through: the sink reads and leaves the field out."""
    ticket_id = await desk.created_by_sink()
    result = await desk.sink.execute(
        status_update(ticket_id, CaseStatus.SOLVED, expect_status="pending")
    )
    assert desk.calls() == ["GET"]
    assert not result.written
    assert desk.ticket(ticket_id).status == "open"
    assert "status " + LEFT_OUT.format(now="open", expected="pending") in result.detail


async def test_the_value_already_written_is_kept(desk: Desk) -> None:
    """A person made the same change the planner wants: no conflict over it."""
    ticket_id = await desk.created_by_sink()
    await desk.person(ticket_id, {"status": "pending"})
    result = await desk.sink.execute(
        status_update(ticket_id, CaseStatus.PENDING, expect_status="open")
    )
    assert desk.calls() == ["PUT", "GET", "PUT"]
    assert result.written
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "status", "pending")]
    assert "left out" not in result.detail


# -- (c) a stale stamp from an unrelated change ----------------------------------------------


async def test_an_unrelated_change_costs_one_reread_and_the_write_goes_through(
    desk: Desk,
) -> None:
    ticket_id = await desk.created_by_sink()
    await desk.person(ticket_id, {"comment": {"body": "Looking into it", "public": False}})
    noted_at = (await desk.agent.ticket(int(ticket_id)))["updated_at"]
    result = await desk.sink.execute(
        status_update(ticket_id, CaseStatus.PENDING, expect_status="open")
    )
    assert desk.calls() == ["PUT", "GET", "PUT"]
    assert result.api_calls == 3
    first, second = desk.puts()
    assert first["safe_update"] is True
    assert first["updated_stamp"] != noted_at  # the stamp from before the note
    assert second == {"status": "pending", "safe_update": True, "updated_stamp": noted_at}
    assert desk.ticket(ticket_id).status == "pending"
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "status", "pending")]
    assert "left out" not in result.detail
    assert "re-read after 1 safe_update conflict" in result.detail


async def test_a_ticket_that_keeps_changing_gives_up_after_three_rereads(desk: Desk) -> None:
    ticket_id = await desk.created_by_sink()

    async def someone_types(request: httpx.Request) -> None:  # before each of the sink's PUTs
        if request.method == "PUT":
            await desk.person(ticket_id, {"comment": {"body": "typing", "public": False}})

    desk.http.event_hooks["request"].append(someone_types)
    with pytest.raises(RetriableAPIError, match="changed under each of 4 safe updates") as error:
        await desk.sink.execute(status_update(ticket_id, CaseStatus.PENDING, expect_status="open"))
    assert error.value.status == 409
    assert desk.calls() == ["PUT", "GET", "PUT", "GET", "PUT", "GET", "PUT"]
    assert desk.ticket(ticket_id).status == "open"


# -- (d) the sink's own writes move its stamp ------------------------------------------------


async def test_the_sinks_own_write_does_not_conflict_with_its_next(desk: Desk) -> None:
    ticket_id = await desk.created_by_sink()
    first = await desk.sink.execute(
        status_update(ticket_id, CaseStatus.PENDING, expect_status="open")
    )
    desk.clock.advance(60)
    data = {"status": CaseStatus.SOLVED, "priority": Priority.URGENT}
    made = update(ticket_id, data, key="upd-2", expect_status="pending", expect_priority="high")
    second = await desk.sink.execute(made)
    assert desk.calls() == ["PUT", "PUT"]
    assert (first.api_calls, second.api_calls) == (1, 1)
    assert all(body["safe_update"] for body in desk.puts())
    ticket = desk.ticket(ticket_id)
    assert (ticket.status, ticket.priority) == ("solved", "urgent")


# -- fields without expectations behave as before --------------------------------------------


async def test_without_expectations_there_is_no_safe_update(desk: Desk) -> None:
    ticket_id = await desk.created_by_sink()
    await desk.person(ticket_id, {"status": "solved"})
    result = await desk.sink.execute(status_update(ticket_id, CaseStatus.PENDING))
    assert desk.calls() == ["PUT"]
    assert desk.puts() == [{"status": "pending"}]
    assert desk.ticket(ticket_id).status == "pending"
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "status", "pending")]
