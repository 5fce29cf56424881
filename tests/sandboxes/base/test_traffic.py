"""The traffic generator: a deterministic plan, a polite transport, and real runs against the
four sandboxes on loopback whose ledger matches what the platforms hold afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.sandbox_cli import sandbox as sandbox_cli
from connectors.base.links import case_link_id
from sandboxes.base import FaultProfile, LoopbackReceiver, run_sandboxes
from sandboxes.base.traffic import (
    DEFAULT_WEIGHTS,
    PLANS,
    PoliteTransport,
    Scenario,
    Step,
    Targets,
    TrafficGenerator,
    TrafficReport,
    TrafficStats,
    make_population,
    plan_day,
)
from sandboxes.intercom import IntercomSandbox
from sandboxes.salesforce import SalesforceSandbox
from sandboxes.zendesk import ZendeskSandbox
from sandboxes.zendesk.actors import api_token_auth, zendesk_http
from sandboxes.zendesk_conversations import SunshineSandbox

# -- the plan (pure) -----------------------------------------------------------------------


def _shape(seed: int, **kw: Any) -> list[tuple[float, str, str, tuple[Step, ...]]]:
    day = plan_day(seed=seed, rate=kw.pop("rate", 2.0), duration=kw.pop("duration", 60.0), **kw)
    return [
        (a.at, a.scenario.value, a.customer.key, tuple(x.step for x in a.actions))
        for a in day.arrivals
    ]


def test_the_day_is_the_same_for_the_same_seed() -> None:
    assert plan_day(seed=7, rate=2, duration=60) == plan_day(seed=7, rate=2, duration=60)
    assert _shape(7) != _shape(8)


@pytest.mark.parametrize(("rate", "duration"), [(5.0, 200.0), (0.5, 2000.0), (40.0, 25.0)])
def test_arrivals_honour_rate_and_duration(rate: float, duration: float) -> None:
    expected = rate * duration  # 1000: four standard deviations are about 126
    for seed in range(3):
        arrivals = plan_day(seed=seed, rate=rate, duration=duration).arrivals
        assert abs(len(arrivals) - expected) < 4 * expected**0.5
        offsets = [a.at for a in arrivals]
        assert offsets == sorted(offsets)
        assert offsets[0] > 0
        assert offsets[-1] < duration
        assert [a.index for a in arrivals] == list(range(len(arrivals)))


def test_scenarios_follow_their_weights() -> None:
    arrivals = plan_day(seed=1, rate=50, duration=200).arrivals  # about 10,000
    counts = Counter(a.scenario for a in arrivals)
    total = sum(DEFAULT_WEIGHTS.values())
    for scenario, weight in DEFAULT_WEIGHTS.items():
        assert abs(counts[scenario] / len(arrivals) - weight / total) < 0.02, scenario


def test_only_scenarios_the_platforms_can_serve_are_drawn() -> None:
    day = plan_day(seed=3, rate=5, duration=40, platforms=["intercom"])
    assert {a.scenario for a in day.arrivals} == {Scenario.BILLING}
    day = plan_day(seed=3, rate=5, duration=40, platforms=["zendesk", "intercom"])
    assert {a.scenario for a in day.arrivals} == {
        Scenario.ESCALATED,
        Scenario.BILLING,
        Scenario.RETURNING,
        Scenario.ZENDESK_EMAIL,
    }
    with pytest.raises(ValueError, match="no scenario can run"):
        plan_day(seed=3, rate=5, duration=40, platforms=["salesforce"],
                 weights={Scenario.ESCALATED: 1.0})  # fmt: skip


def test_the_population_is_plausible() -> None:
    import random

    people = make_population(random.Random(5), 500)
    assert len({p.email for p in people}) == 500
    addresses = [p.email for p in people] + [p.secondary_email for p in people if p.secondary_email]
    assert len(set(addresses)) == len(addresses)  # nobody shares an address
    share = sum(1 for p in people if p.secondary_email) / len(people)
    assert 0.2 < share < 0.4
    plans = Counter(p.plan for p in people)
    assert set(plans) == set(PLANS)
    assert plans["free"] > plans["enterprise"]
    assert all(p.email.endswith(".example") for p in people)


def test_returning_customers_have_a_second_address() -> None:
    day = plan_day(seed=9, rate=10, duration=100)
    returning = [a for a in day.arrivals if a.scenario is Scenario.RETURNING]
    assert returning
    assert all(a.customer.secondary_email for a in returning)


def test_scripts_are_what_the_scenarios_say() -> None:
    day = plan_day(seed=2, rate=20, duration=50)
    for arrival in day.arrivals:
        steps = [a.step for a in arrival.actions]
        assert all(a.think_s >= 0 for a in arrival.actions)
        if arrival.scenario is Scenario.ESCALATED:
            tag = next(a for a in arrival.actions if a.step is Step.IC_TAG)
            assert tag.detail("tag") == "escalate"
            assert steps.index(Step.IC_TAG) < steps.index(Step.ZD_AWAIT_MIRROR)
            assert steps[-1] is Step.ZD_SOLVE
        elif arrival.scenario is Scenario.BILLING:
            reply = next(a for a in arrival.actions if a.step is Step.IC_CUSTOMER_REPLY)
            assert reply.detail("attachment").endswith(".pdf")
        elif arrival.scenario is Scenario.SUNSHINE_HANDOFF:
            hand_off = next(a for a in arrival.actions if a.step is Step.SC_HAND_OFF)
            assert {k for k, _ in hand_off.details} == {"reason", "sentiment", "summary"}
            assert steps[-1] is Step.SC_AGENT_RELEASE
        elif arrival.scenario is Scenario.SALESFORCE_CASE:
            assert steps[0] is Step.SF_CASE
            assert arrival.actions[-1].detail("status") == "Closed"


# -- the polite transport (MockTransport) --------------------------------------------------


@dataclass
class Script:
    """Answers from a list; records what the transport was told to sleep."""

    answers: list[httpx.Response]
    slept: list[float]
    seen: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        return self.answers.pop(0)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def _send(
    *answers: httpx.Response, attempts: int = 8
) -> tuple[httpx.Response, Script, TrafficStats]:
    script, stats = Script(list(answers), []), TrafficStats()
    transport = PoliteTransport(
        httpx.MockTransport(script.handle),
        platform="p",
        stats=stats,
        attempts=attempts,
        sleep=script.sleep,
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        response = await http.post("/things", json={"a": 1})
    return response, script, stats


async def test_retry_after_is_honoured() -> None:
    response, script, stats = await _send(
        httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(201, json={"id": 1})
    )
    assert response.status_code == 201
    assert script.slept == [3.0]
    counts = stats.platforms["p"]
    assert (counts.requests, counts.rate_limited, counts.retries) == (2, 1, 1)


async def test_intercoms_reset_time_is_honoured() -> None:
    import time

    reset = str(int(time.time()) + 5)
    _, script, _ = await _send(
        httpx.Response(429, headers={"X-RateLimit-Reset": reset}), httpx.Response(200)
    )
    assert 3.5 < script.slept[0] <= 5.0


async def test_without_hints_it_backs_off_exponentially() -> None:
    _, script, stats = await _send(
        httpx.Response(429), httpx.Response(503), httpx.Response(502), httpx.Response(200)
    )
    first, second, third = script.slept
    assert 0.1 <= first <= 0.4
    assert 0.2 <= second <= 0.8
    assert 0.4 <= third <= 1.6
    assert (stats.platforms["p"].rate_limited, stats.platforms["p"].server_errors) == (1, 2)


async def test_salesforce_throttle_is_retried_other_403s_are_not() -> None:
    throttled = httpx.Response(403, json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    response, script, _ = await _send(throttled, httpx.Response(201))
    assert (response.status_code, script.seen) == (201, 2)
    forbidden = httpx.Response(403, json=[{"errorCode": "INSUFFICIENT_ACCESS"}])
    response, script, _ = await _send(forbidden)
    assert (response.status_code, script.seen, script.slept) == (403, 1, [])
    assert response.json() == [{"errorCode": "INSUFFICIENT_ACCESS"}]  # body still readable


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422], ids=lambda s: f"client-{s}")
async def test_client_errors_are_not_retried(status: int) -> None:
    response, script, stats = await _send(httpx.Response(status))
    assert (response.status_code, script.seen, stats.platforms["p"].retries) == (status, 1, 0)


async def test_it_gives_up_after_its_attempts() -> None:
    response, script, stats = await _send(*[httpx.Response(503)] * 3, attempts=3)
    assert (response.status_code, script.seen, len(script.slept)) == (503, 3, 2)
    assert stats.platforms["p"].gave_up == 1


# -- real runs against the four sandboxes --------------------------------------------------


@dataclass
class Platforms:
    intercom: IntercomSandbox
    zendesk: ZendeskSandbox
    sunshine: SunshineSandbox
    salesforce: SalesforceSandbox
    urls: dict[str, str]

    def targets(self, **overrides: Any) -> Targets:
        return Targets(**overrides).with_urls(self.urls)


@asynccontextmanager
async def serve_all(
    *, faults: FaultProfile | None = None, intercom_webhooks: str | None = None
) -> AsyncIterator[Platforms]:
    profile = faults or FaultProfile(name="none")
    sandboxes = (
        IntercomSandbox.create(seed=1, faults=profile, webhook_target=intercom_webhooks),
        ZendeskSandbox.create(seed=1, faults=profile),
        SunshineSandbox.create(seed=1, faults=profile),
        SalesforceSandbox.create(seed=1, faults=profile),
    )
    async with run_sandboxes(sandboxes) as running:
        urls = {name: running.url(name) for name in running.ports}
        yield Platforms(*sandboxes, urls=urls)


def assert_ledger_matches(
    report: TrafficReport, platforms: Platforms, *, mirrored: int = 0
) -> None:
    """Every count the ledger claims is what the platforms hold (``mirrored``: tickets a
    sync created, each with one comment of its own)."""
    ledger = report.ledger
    intercom = platforms.intercom.state
    assert sorted(intercom.conversations) == sorted(ledger.ids("intercom.conversation"))
    parts = sum(len(c.parts) for c in intercom.conversations.values())
    assert parts == ledger.writes("intercom.part")
    assert len(intercom.contacts) == len(ledger.people["intercom"])
    tagged = sum(len(c.tags) for c in intercom.conversations.values())
    assert tagged == ledger.writes("intercom.tag")

    zendesk = platforms.zendesk.core.state
    tickets = {str(t) for t in zendesk.tickets}
    ours = set(ledger.ids("zendesk.ticket"))
    assert len(tickets) == len(ours) + mirrored
    assert ours <= tickets
    assert set(ledger.ids("zendesk.escalation")) <= tickets
    comments = sum(len(t.comment_ids) for t in zendesk.tickets.values())
    assert comments == ledger.writes("zendesk.comment") + mirrored
    secondary = [i for i in zendesk.identities.values() if not i.primary]
    assert len(secondary) == ledger.writes("zendesk.identity")

    sunshine = platforms.sunshine.state
    assert sorted(sunshine.conversations) == sorted(ledger.ids("sunshine.conversation"))
    messages = sum(len(c.messages) for c in sunshine.conversations.values())
    assert messages == ledger.writes("sunshine.message")
    assert len(sunshine.users) == len(ledger.people["zendesk_conversations"])

    records = platforms.salesforce.org.store.records
    assert sorted(records["Case"]) == sorted(ledger.ids("salesforce.case"))
    assert len(records["CaseComment"]) == ledger.writes("salesforce.comment")
    assert (
        len(records["Contact"])
        == len(ledger.people["salesforce"])
        == ledger.writes("salesforce.contact")
    )


async def test_a_short_day_against_all_four_sandboxes() -> None:
    async with serve_all() as platforms:
        generator = TrafficGenerator(
            platforms.targets(), rate=8, duration=3, seed=11, speed=5000, mirror_timeout=0
        )
        report = await generator.run()
    assert report.stats.errors == 0, report.stats.error_samples
    planned = generator.day.arrivals
    assert report.planned == len(planned) == len(report.ledger.entries) > 10
    assert report.ledger.by_scenario() == Counter(a.scenario.value for a in planned)
    outcomes = {e.scenario: e.outcome for e in report.ledger.entries}
    # No sync runs here: escalations wait for it; everything else ends as scripted.
    expected = {s: "solved" for s in Scenario} | {
        Scenario.AI_RESOLVED: "resolved",
        Scenario.ESCALATED: "awaiting_sync",
    }
    assert all(outcome == expected[s] for s, outcome in outcomes.items())
    assert set(report.stats.platforms) == {
        "intercom",
        "zendesk",
        "zendesk_conversations",
        "salesforce",
    }
    assert all(p.rate_limited == p.server_errors == 0 for p in report.stats.platforms.values())
    assert_ledger_matches(report, platforms)
    assert "unexpected_errors=0" in report.table()


async def test_the_same_seed_writes_the_same_things() -> None:
    totals = []
    for _ in range(2):
        async with serve_all() as platforms:
            generator = TrafficGenerator(
                platforms.targets(), rate=6, duration=2, seed=4, speed=5000, mirror_timeout=0
            )
            report = await generator.run()
        writes: Counter[str] = Counter()
        for entry in report.ledger.entries:
            writes.update(entry.writes)
        totals.append((writes, report.ledger.outcomes(), report.ledger.by_scenario()))
    assert totals[0] == totals[1]


async def _mirror_escalations(receiver: LoopbackReceiver, zendesk_url: str) -> None:
    """A stand-in for the sync: each Intercom conversation tagged ``escalate`` becomes a
    Zendesk ticket, written by the integration user with the link id as external_id."""
    seen = 0
    auth = api_token_auth("deskstream@deskstream-sandbox.test", "sandbox-api-token")
    async with zendesk_http(zendesk_url, auth) as http:
        while True:
            while seen < len(receiver.deliveries):
                note = json.loads(receiver.deliveries[seen].body)
                seen += 1
                if note["topic"] != "conversation_part.tag.created":
                    continue
                item = note["data"]["item"]
                if [t["name"] for t in item["tags_added"]["tags"]] != ["escalate"]:
                    continue
                ticket = {
                    "subject": "Escalated from Intercom",
                    "comment": {"body": item["source"]["body"]},
                    "external_id": case_link_id("intercom", "intercom", item["id"]),
                }
                created = await http.post("/api/v2/tickets", json={"ticket": ticket})
                assert created.status_code == 201, created.text
            await asyncio.sleep(0.02)


async def test_escalations_a_sync_mirrors_are_solved_by_the_zendesk_agent() -> None:
    async with (
        LoopbackReceiver() as receiver,
        serve_all(intercom_webhooks=f"{receiver.url}/webhooks/intercom") as platforms,
    ):
        mirror = asyncio.create_task(_mirror_escalations(receiver, platforms.urls["zendesk"]))
        generator = TrafficGenerator(
            platforms.targets(),
            rate=6,
            duration=3,
            seed=5,
            speed=5000,
            mirror_timeout=10,
            weights={Scenario.ESCALATED: 3, Scenario.BILLING: 1},
        )
        try:
            report = await generator.run()
        finally:
            mirror.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mirror
        escalated = [e for e in report.ledger.entries if e.scenario is Scenario.ESCALATED]
        assert escalated
        assert report.stats.errors == 0, report.stats.error_samples
        assert {e.outcome for e in escalated} == {"solved"}
        assert report.stats.conversations["escalated"] == len(escalated)
        state = platforms.zendesk.core.state
        integration = state.user_by_email("deskstream@deskstream-sandbox.test")
        agent = state.user_by_email("admin@deskstream-sandbox.test")
        assert integration is not None
        assert agent is not None
        for entry in escalated:
            ticket = state.tickets[int(entry.ids["zendesk.escalation"])]
            assert ticket.external_id == case_link_id(
                "intercom", "intercom", entry.ids["intercom.conversation"]
            )
            assert (ticket.status, ticket.priority in ("high", "normal")) == ("solved", True)
            authors = [state.comments[c].author_id for c in ticket.comment_ids]
            # The sync's first comment, then the agent's note and reply.
            assert authors == [integration.id, agent.id, agent.id]
        assert_ledger_matches(report, platforms, mirrored=len(escalated))


async def test_rate_limits_and_errors_are_ridden_out_politely() -> None:
    faults = FaultProfile(
        name="bumpy",
        error_rate=0.05,
        burst_429_every=40,
        burst_429_length=2,
        burst_429_retry_after_s=0.2,
    )
    async with serve_all(faults=faults) as platforms:
        generator = TrafficGenerator(
            platforms.targets(), rate=8, duration=3, seed=6, speed=5000, mirror_timeout=0
        )
        report = await generator.run()
    assert report.stats.errors == 0, report.stats.error_samples
    counts = report.stats.platforms.values()
    assert sum(p.rate_limited for p in counts) > 0
    assert sum(p.server_errors for p in counts) > 0
    assert all(p.retries == p.rate_limited + p.server_errors for p in counts)
    assert all(p.gave_up == 0 for p in counts)
    # Injected failures happen before the platform acts, so retried writes are not doubled.
    assert_ledger_matches(report, platforms)


# -- the CLI ------------------------------------------------------------------------------


@contextlib.contextmanager
def sandboxes_in_a_thread() -> Iterator[dict[str, str]]:
    """The four sandboxes on their own event loop, for a CLI that runs ``asyncio.run``."""
    ready, urls = threading.Event(), {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with serve_all() as platforms:
            urls.update(platforms.urls)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield urls
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def test_the_traffic_command_prints_progress_a_table_and_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    with sandboxes_in_a_thread() as urls:
        result = CliRunner().invoke(
            sandbox_cli,
            [
                "traffic", "--rate", "5", "--duration", "2", "--seed", "3", "--speed", "5000",
                "--mirror-timeout", "0", "--progress-every", "0.5", "--ledger", str(ledger),
                "--intercom-url", urls["intercom"], "--zendesk-url", urls["zendesk"],
                "--zendesk-conversations-url", urls["zendesk_conversations"],
                "--salesforce-url", urls["salesforce"],
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("planned ")
    assert any(line.startswith("t=") for line in lines)
    assert any(line.startswith("platform ") for line in lines)
    assert "unexpected_errors=0" in result.output
    entries = json.loads(ledger.read_text(encoding="utf-8"))["entries"]
    assert len(entries) == int(lines[0].split()[1])


def test_traffic_against_nothing_says_what_to_start() -> None:
    result = CliRunner().invoke(
        sandbox_cli, ["traffic", "--rate", "1", "--duration", "1", "--port-base", "1"]
    )
    assert result.exit_code == 1
    assert "nothing answers for" in result.output
    assert "deskstream sandbox" in result.output


def test_serving_options_before_traffic_are_refused() -> None:
    result = CliRunner().invoke(
        sandbox_cli, ["--platforms", "intercom", "traffic", "--rate", "1", "--duration", "1"]
    )
    assert result.exit_code == 2
    assert "--platforms" in result.output


def test_serve_is_the_default_and_a_subcommand() -> None:
    for args in ([], ["serve"]):
        result = CliRunner().invoke(
            sandbox_cli, [*args, "--platforms", "intercom", "--port-base", "0", "--duration", "0.2"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["ready"] is True


async def test_conversations_still_open_after_the_drain_are_cancelled() -> None:
    async with serve_all() as platforms:
        generator = TrafficGenerator(
            platforms.targets(), rate=20, duration=0.5, seed=2, speed=1, drain_timeout=0.3
        )  # speed 1: people take real minutes, so nobody finishes within the drain
        report = await generator.run()
    outcomes = report.ledger.outcomes()
    assert outcomes["cancelled"] == len(report.ledger.entries) > 0
    assert report.stats.conversations["cancelled"] == outcomes["cancelled"]
    assert report.stats.errors == 0
    assert report.stats.in_flight == 0


def test_the_public_api() -> None:
    from sandboxes.base import traffic
    from sandboxes.intercom import actors as intercom
    from sandboxes.salesforce import actors as salesforce
    from sandboxes.zendesk import actors as zendesk
    from sandboxes.zendesk_conversations import actors as sunshine

    for module in (traffic, intercom, salesforce, zendesk, sunshine):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
    assert {"TrafficGenerator", "Targets", "TrafficReport", "Ledger", "plan_day"} <= set(
        traffic.__all__
    )
    assert {"IntercomCustomer", "IntercomAdmin"} <= set(intercom.__all__)
    assert {"ZendeskAgent", "ZendeskRequester"} <= set(zendesk.__all__)
    assert {"SunshineEndUser", "SunshineAIAgent", "SunshineHumanAgent"} <= set(sunshine.__all__)
    assert "SalesforceConsoleUser" in salesforce.__all__
