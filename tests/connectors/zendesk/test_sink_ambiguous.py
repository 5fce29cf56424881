"""The Zendesk sink against ambiguous writes: the sandbox applies a write and loses its answer
(5xx, a reset, or an answer after the client's timeout) for a large share of writes. Every
command goes through the real retry policy, as the sink runner runs it; then every command runs
again at attempt 2, as after a worker killed between Zendesk's answer and the commit. Counted
afterwards: one ticket per link, one user per customer, each comment exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from connectors.base.retry import RetryPolicy, call_with_retries
from connectors.zendesk.sink import ZendeskSink
from sandboxes.base import ManualClock
from schemas.models import CommandAction, Contact, EntityType, SyncCommand
from tests.connectors.zendesk.test_sink import AGENT, CUSTOMER, command, message, upsert
from tests.sandboxes.zendesk.conftest import ZendeskEnv, serve

#: the client gives up long before the sandbox answers a held write
CLIENT_TIMEOUT_S = 0.5
POLICY = RetryPolicy(attempts=15, initial_s=0.0, max_s=0.0, jitter_s=0.0)
CASES = 8
APPENDS = 3


@dataclass
class Run:
    env: ZendeskEnv
    sink: ZendeskSink


@pytest.fixture
async def ambiguous(clock: ManualClock, request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    async with serve(clock, rate_limit_per_minute=100_000, seed=request.param[1]) as env:
        settings = env.connector_settings().model_copy(update={"rate_limit_per_minute": 100_000})
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as http:
            sink = ZendeskSink(connector_id="zd", settings=settings, http=http)
            profile = {
                "ambiguous_write_rate": 0.4,
                "ambiguous_modes": [request.param[0]],
                "ambiguous_delay_s": 5.0,
            }
            assert (await env.http.put("/_sandbox/faults", json=profile)).status_code == 200
            yield Run(env, sink)
            await sink.aclose()


def _link(n: int) -> str:
    return f"lnk_{n:032x}"


def _commands() -> list[list[SyncCommand]]:
    """Per case: its upsert (one message, or a thread of two: the create and the import
    paths), its appends (customer replies and internal notes), a contact/upsert."""
    plans: list[list[SyncCommand]] = []
    for n in range(CASES):
        email = f"customer{n}@example.com"
        who = CUSTOMER.model_copy(update={"email": email, "name": f"Customer {n}"})
        contact = Contact(emails=[email], name=f"Customer {n}")
        thread = [message(who, f"Case {n} opens", 0)]
        if n % 2:
            thread.append(message(AGENT, f"Case {n} escalated", 1, public=False))
        plan = [upsert(thread, contact, link=_link(n), key=f"up-{n}")]
        for i in range(APPENDS):
            author, public = (who, True) if i % 2 == 0 else (AGENT, False)
            data = message(author, f"Case {n} follow-up {i}", 10 + i, public=public)
            if i == APPENDS - 1:  # an HTML-only message: Zendesk keeps it as html_body
                html = f"<p>Case {n} <b>follow-up</b> {i}</p>"
                data = data.model_copy(update={"body_text": None, "body_html": html})
            plan.append(
                command(
                    EntityType.MESSAGE,
                    CommandAction.APPEND,
                    data,
                    link=_link(n),
                    key=f"app-{n}-{i}",
                    options={"source_platform": "intercom"},
                )
            )
        profile = Contact(emails=[email], name=f"Customer {n}", phone=f"+3460000{n:04d}")
        plan.append(
            command(
                EntityType.CONTACT,
                CommandAction.UPSERT,
                profile,
                link=_link(n),
                key=f"contact-{n}",
                changed_fields=["phone"],
            )
        )
        plans.append(plan)
    return plans


async def _run(sink: ZendeskSink, commands: list[SyncCommand]) -> None:
    for cmd in commands:
        await call_with_retries(lambda cmd=cmd: sink.execute(cmd), POLICY)  # type: ignore[misc]


def _texts(env: ZendeskEnv, ticket_id: int) -> list[str]:
    state = env.sandbox.core.state
    return [state.comments[c].body for c in state.tickets[ticket_id].comment_ids]


@pytest.mark.parametrize(
    "ambiguous",
    [("5xx", 11), ("reset", 12), ("timeout", 13)],
    ids=["5xx", "reset", "timeout"],
    indirect=True,
)
async def test_every_record_exists_once_under_ambiguous_writes(ambiguous: Run) -> None:
    env, sink = ambiguous.env, ambiguous.sink
    plans = _commands()
    for plan in plans:
        await _run(sink, plan)
    faults = (await env.http.get("/_sandbox/state")).json()["faults"]
    assert faults["ambiguous_writes"] >= 5  # the run really met lost answers
    # A worker killed after Zendesk answered: every command again, at attempt 2.
    for plan in plans:
        await _run(sink, [c.model_copy(update={"attempt": 2}) for c in plan])

    state = env.sandbox.core.state
    by_link = Counter(t.external_id for t in state.tickets.values())
    assert by_link == Counter({_link(n): 1 for n in range(CASES)})
    emails = Counter(u.email for u in state.users.values() if u.email)
    for n in range(CASES):
        assert emails[f"customer{n}@example.com"] == 1
        [user] = [u for u in state.users.values() if u.email == f"customer{n}@example.com"]
        assert user.phone == f"+3460000{n:04d}"
    for ticket in state.tickets.values():
        n = int(str(ticket.external_id)[4:], 16)
        texts = _texts(env, ticket.id)
        expected = [f"Case {n} opens"] + ([f"Case {n} escalated"] if n % 2 else [])
        expected += [f"Case {n} follow-up {i}" for i in range(APPENDS)]
        # Each body ends with its message (after the attribution line, where there is one).
        assert [next(t for t in texts if t.endswith(e)) for e in expected]
        assert Counter(e for t in texts for e in expected if t.endswith(e)) == Counter(expected)
        assert len(texts) == len(expected)
