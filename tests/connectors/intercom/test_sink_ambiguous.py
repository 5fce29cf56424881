"""The Intercom sink against ambiguous writes: the sandbox applies a write and loses its
answer (5xx, a reset, or an answer after the client's timeout) for a large share of writes.
Every command goes through the real retry policy, as the sink runner runs it; then every
command runs again at attempt 2, as after a worker killed between Intercom's answer and the
commit. Counted afterwards: each reply and note once, one contact per customer, one
acknowledgement per ticket, each conversation closed and tagged once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from connectors.base.commands import OPTION_TAGS_ADDED, encode_list
from connectors.base.retry import RetryPolicy, call_with_retries
from connectors.intercom import models as ic
from connectors.intercom.sink import IntercomSink
from sandboxes.base import ManualClock, run_sandboxes
from sandboxes.intercom import IntercomSandbox
from schemas.models import Case, CaseStatus, Contact, EntityType, SyncCommand
from tests.connectors.intercom.sink_env import ADMINS, BOT, Connector, settings_for
from tests.sandboxes.intercom.conftest import TOKEN, make_sandbox

CLIENT_TIMEOUT_S = 0.5
POLICY = RetryPolicy(attempts=15, initial_s=0.0, max_s=0.0, jitter_s=0.0)
CONVERSATIONS = 6
APPENDS = 3


@dataclass
class Run:
    sandbox: IntercomSandbox
    api: httpx.AsyncClient
    sink: IntercomSink
    connector: Connector
    mode: str


@pytest.fixture
async def ambiguous(clock: ManualClock, request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    mode, seed = request.param
    sandbox = make_sandbox(clock=clock, webhook_url=None, admins=ADMINS, seed=seed)
    async with run_sandboxes([sandbox]) as running:
        url = running.url("intercom")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx.AsyncClient(base_url=url, headers=headers) as api,
            httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S) as http,
        ):
            sink = IntercomSink(
                connector_id="ic",
                settings=settings_for(url),
                http=http,
                now=lambda: clock.now().timestamp(),
            )
            # Only the command helpers of the bench are used: no receiver, no webhooks.
            connector = Connector(sandbox, sink, api, None, clock, settings_for(url))  # type: ignore[arg-type]
            yield Run(sandbox, api, sink, connector, mode)
            await sink.aclose()


async def _arrange(run: Run) -> list[tuple[str, str]]:
    """Customers and their conversations, before any fault: (contact id, conversation id)."""
    made = []
    for n in range(CONVERSATIONS):
        contact = (await run.api.post("/contacts", json={"email": f"c{n}@example.com"})).json()
        body = {"from": {"type": "user", "id": contact["id"]}, "body": f"Help {n}"}
        started = (await run.api.post("/conversations", json=body)).json()
        made.append((contact["id"], started["conversation_id"]))
    return made


def _commands(run: Run, made: list[tuple[str, str]]) -> list[SyncCommand]:
    c = run.connector
    commands: list[SyncCommand] = []
    for n, (_, cid) in enumerate(made):
        for i in range(APPENDS):
            text = f"Conversation {n} mirrored {i}"
            data = c.message(text, public=i % 2 == 0)
            commands.append(c.command(EntityType.MESSAGE, "append", data, entity_id=cid))
        closed = Case(status=CaseStatus.CLOSED, tags=["escalated"])
        options = {OPTION_TAGS_ADDED: encode_list(["escalated"])}
        commands.append(
            c.command(
                EntityType.CASE,
                "update",
                closed,
                entity_id=cid,
                changed=["status", "tags"],
                options=options,
            )
        )
        ack = c.message(f"We received your request #{n} and will answer within a day.")
        requester = Contact(emails=[f"c{n}@example.com"])
        commands.append(c.command(EntityType.CASE, "upsert", ack, contact=requester))
        new = Contact(emails=[f"new{n}@example.com"], name=f"New {n}", external_id=f"ext-{n}")
        commands.append(c.command(EntityType.CONTACT, "upsert", new, changed=["name"]))
    return commands


async def _run(sink: IntercomSink, commands: list[SyncCommand]) -> None:
    for cmd in commands:
        await call_with_retries(lambda cmd=cmd: sink.execute(cmd), POLICY)  # type: ignore[misc]


@pytest.mark.parametrize(
    "ambiguous",
    [("5xx", 21), ("reset", 22), ("timeout", 23)],
    ids=["5xx", "reset", "timeout"],
    indirect=True,
)
async def test_every_record_exists_once_under_ambiguous_writes(ambiguous: Run) -> None:
    run = ambiguous
    made = await _arrange(run)
    profile = {
        "ambiguous_write_rate": 0.4,
        "ambiguous_modes": [run.mode],
        "ambiguous_delay_s": 5.0,
    }
    assert (await run.api.put("/_sandbox/faults", json=profile)).status_code == 200
    commands = _commands(run, made)
    await _run(run.sink, commands)
    faults = (await run.api.get("/_sandbox/state")).json()["faults"]
    assert faults["ambiguous_writes"] >= 5  # the run really met lost answers
    await _run(run.sink, [c.model_copy(update={"attempt": 2}) for c in commands])

    state = run.sandbox.state
    for n, (contact_id, cid) in enumerate(made):
        conversation = state.conversations[cid]
        ours = Counter(
            (p.part_type, ic.html_to_text(p.body))
            for p in conversation.parts
            if p.author.get("id") == BOT and p.part_type in {"comment", "note"}
        )
        for i in range(APPENDS):
            kind = "comment" if i % 2 == 0 else "note"
            matching = [k for k in ours if k[0] == kind and k[1].endswith(f"mirrored {i}")]
            assert [ours[k] for k in matching] == [1], (n, i, ours)
        assert len(ours) == APPENDS
        assert conversation.state == "closed"
        assert [t.tag_id for t in conversation.tags] == [state_tag(run, "escalated")]
        acks = [
            v
            for v in state.conversations.values()
            if v.contact_ids == [contact_id] and v.source.get("delivered_as") == "admin_initiated"
        ]
        assert len(acks) == 1
    emails = Counter(v.email for v in state.contacts.values())
    assert all(emails[f"new{n}@example.com"] == 1 for n in range(CONVERSATIONS))
    assert all(emails[f"c{n}@example.com"] == 1 for n in range(CONVERSATIONS))
    assert Counter(t.name for t in state.tags.values())["escalated"] == 1


def state_tag(run: Run, name: str) -> str:
    return next(t.id for t in run.sandbox.state.tags.values() if t.name == name)
