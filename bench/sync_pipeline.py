"""The Intercom ⇄ Zendesk sync of one worker under contact-center traffic, against the design
targets (issue 4).

    .venv/bin/python -m bench.sync_pipeline [--conversations 200] [--concurrency 20]
                                            [--rate 1.0] [--faults none|flaky]
    .venv/bin/python -m bench.sync_pipeline --dry-run [--profile] [--conversations 1000]
                                            [--workers 2 [--standby-replicas 0]]

``--dry-run``: the sync stage's own cost, sinks in their dry-run mode (``bench.sync_dry_run``).

Starts (or reuses) the local Kafka stack and a sync rehearsal (``app.rehearsal.sync_stack``:
one worker process, private topics, the Intercom and Zendesk sandboxes on loopback). N
customers arrive ``--rate`` per second (0: all at once), at most ``--concurrency`` open at
once: each writes an Intercom conversation of two messages, a human admin tags it
``escalate`` (→ a Zendesk ticket with the thread), a human Zendesk agent replies (→ an
Intercom admin reply) and solves it (→ closed). Five human changes each, through the APIs.

Actors, not the ``TrafficGenerator`` (its ``escalated`` scenario adds notes, priority, plans,
think times, and platforms this stack does not sync): an exact, countable set of changes. The
agent learns of a ticket from the audit topic (the sink's write names it), not by polling
Zendesk, whose 700 requests/min the sink needs. Once settled, both platforms are checked
through the APIs; a surplus object counts as a repeated write.

Figures, from the audit topic and the ``<prefix>.events`` / ``<prefix>.sync`` topics:
sync events/s = sync records ÷ (first webhook received → last event processed: its first
sync-stage decision, else its sync record), the rate the people offer; the busiest 10 s and
events per worker CPU-second (all stages and sinks) show what one worker can carry. End to end
p50/p99: the sinks' ``end_to_end_ms`` (webhook received → target write started), split per
target and against webhook → sync decision. API calls: the sinks' ``api_calls`` ÷ writes, and
÷ human changes (an escalation carries three of them in one create); the requests the
sandboxes answered that were not the people's ÷ writes is the ground truth, and the same
requests from the sandboxes' request log ÷ human changes, per platform and per kind (write,
read by id, lookup) with a line naming each route (``bench.api_calls``; docs/performance.md).
Echoes suppressed, duplicates dropped (``dedupe`` stage), repeated writes (a command written
twice, or a surplus object on a platform: must be 0, the loop detector).

Past ~1.4 customers/s Zendesk's rate limit is the bottleneck and end to end measures its
backlog. Load generator, broker, worker and sandboxes share the cores: lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx

from app.kafka_local.stack import start_cluster
from app.rehearsal import SyncStack, sync_stack
from app.settings import load_settings
from bench.api_calls import CallCount, calls_table, count_calls, route_lines
from bench.figures import at_least, at_most, p50_p99, peak_rate, percentile, row
from bench.proc_stat import cpu_seconds
from bench.sync_common import DONE, AuditFollower, all_done, events_only, read_topic
from bench.sync_dry_run import DryRun, run_dry
from bench.sync_dry_run import report as dry_report
from sandboxes.base.traffic import PoliteTransport, TrafficStats
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent
from schemas.errors import DeskstreamError
from schemas.models import AuditRecord, Envelope

TARGET_PIPELINE_PER_S = 5000.0
TARGET_E2E_P50_MS = 100.0
TARGET_E2E_P99_MS = 500.0
TARGET_CALLS_PER_CHANGE = 1.1
PARTITIONS = 4
IDLE_S = 5.0
HUMAN_CHANGES = 5  # per customer: 2 messages + tag in Intercom, reply + solve in Zendesk
DECISIONS = {"sync", "echo", "dedupe", "rules"}


@dataclass
class People:
    """Own clients (the stack's URLs and credentials): every request counted, retries too."""

    ic: httpx.AsyncClient
    zd: httpx.AsyncClient
    admin: IntercomAdmin
    agent: ZendeskAgent


def _client(base: httpx.AsyncClient, platform: str, stats: TrafficStats) -> httpx.AsyncClient:
    polite = PoliteTransport(
        httpx.AsyncHTTPTransport(), platform=platform, stats=stats, attempts=30, backoff_s=0.5
    )
    return httpx.AsyncClient(base_url=base.base_url, headers=base.headers, transport=polite)


async def _customer(
    stack: SyncStack, people: People, trail: AuditFollower, n: int, gate: asyncio.Semaphore
) -> str:
    async with gate:
        email = f"bench-{n}-{uuid.uuid4().hex[:6]}@example.com"
        customer = IntercomCustomer(people.ic, email=email, name=f"Customer {n}")
        conversation = await customer.start_conversation(f"Order {n} never arrived")
        await customer.reply(conversation, f"Tracking number TRK{n:05d}")
        await people.admin.tag(conversation, "escalate")
        link = stack.link(conversation)
        ticket = int((await trail.write(link, "case_on_zendesk")).details["record"])
        await people.agent.reply(ticket, f"Re-shipped order {n}, ticket {ticket}")
        solving = datetime.now(UTC)
        await people.agent.solve(ticket)
        await trail.write(link, "message_on_intercom")
        await trail.write(link, "case_on_intercom", after=solving)
    return conversation


async def _surplus(stack: SyncStack, people: People, conversations: list[str]) -> int:
    """Objects beyond one ticket per conversation, three comments per ticket, one reply and
    one close by the bot per conversation; raises while anything is still missing."""
    gate = asyncio.Semaphore(4)
    tickets: list[dict[str, Any]] = []
    page: str | None = "/api/v2/tickets?per_page=100"
    while page:
        listed = (await people.zd.get(page)).json()
        tickets, page = tickets + listed["tickets"], listed["next_page"]
    links = Counter(str(t.get("external_id")) for t in tickets)
    missing = sum(links[stack.link(c)] == 0 for c in conversations)

    async def comments(ticket: dict[str, Any]) -> int:
        async with gate:
            answer = await people.zd.get(f"/api/v2/tickets/{ticket['id']}/comments")
        return len(answer.json()["comments"])

    async def bot_parts(conversation: str) -> Counter[str]:
        async with gate:
            found = (await people.ic.get(f"/conversations/{conversation}")).json()
        parts = found["conversation_parts"]["conversation_parts"]
        bot = stack.bot_admin_id
        by_bot = Counter(p["part_type"] for p in parts if str((p["author"] or {})["id"]) == bot)
        by_bot["open"] = int(found["state"] != "closed")
        return by_bot

    counts = await asyncio.gather(*(comments(t) for t in tickets))
    parts = await asyncio.gather(*(bot_parts(c) for c in conversations))
    short = missing + sum(c < 3 for c in counts)
    short += sum(p["comment"] < 1 or p["close"] < 1 or p["open"] > 0 for p in parts)
    if short:
        raise DeskstreamError(f"{short} tickets, comments, replies or closes still missing")
    surplus = len(tickets) - len(conversations) + sum(c - 3 for c in counts)
    return surplus + sum(p["comment"] - 1 + p["close"] - 1 for p in parts)


async def _sandbox(client: httpx.AsyncClient) -> dict[str, Any]:  # "requests": all answered
    return cast(dict[str, Any], (await client.get("/_sandbox/state")).json()["faults"])


@dataclass
class Run:
    args: argparse.Namespace
    bootstrap: str
    drive_s: float = 0.0
    audits: list[AuditRecord] = field(default_factory=list)
    sync: list[tuple[Envelope, int]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)
    worker_cpu_s: float = 0.0
    idle_cpu: float = 0.0  # CPU-seconds per second while no traffic flows
    busy_cpu_s: float = 0.0
    worker_requests: dict[str, int] = field(default_factory=dict)
    #: the worker's requests by platform, kind and route, from the sandboxes' request log
    worker_calls: CallCount = field(default_factory=lambda: count_calls([]))
    surplus: int = 0
    faults: dict[str, Any] = field(default_factory=dict)


async def _drive(run: Run, stack: SyncStack, people: People, trail: AuditFollower) -> list[str]:
    args = run.args
    gate = asyncio.Semaphore(args.concurrency)
    tasks = []
    for n in range(args.conversations):
        tasks.append(asyncio.create_task(_customer(stack, people, trail, n, gate)))
        await asyncio.sleep(1 / args.rate if args.rate > 0 else 0)
    await all_done(tasks, args.timeout, stack)
    return [task.result() for task in tasks]


async def _run(run: Run, folder: Path) -> None:
    args, stats = run.args, TrafficStats()
    options: dict[str, Any] = {"faults": args.faults, "seed": args.seed, "name": "bench-sync"}
    async with (
        sync_stack(run.bootstrap, folder, partitions=PARTITIONS, **options) as stack,
        _client(stack.ic, "intercom", stats) as ic,
        _client(stack.zd_agent, "zendesk", stats) as zd,
        AuditFollower(stack.settings) as trail,
    ):
        admin = IntercomAdmin(ic, admin_id=stack.human_admin_id)
        people = People(ic, zd, admin, ZendeskAgent(zd))
        clients = {"intercom": stack.ic, "zendesk": stack.zd_agent}  # not counted as people
        before = {p: (await _sandbox(c))["requests"] for p, c in clients.items()}
        pid, idle = stack.worker.process.pid, cpu_seconds(stack.worker.process.pid)
        await asyncio.sleep(IDLE_S)  # the worker's idle CPU (timers, polls), for the ceiling
        cpu, started = cpu_seconds(pid), time.perf_counter()
        since = time.monotonic()
        run.idle_cpu = (cpu - idle) / IDLE_S
        conversations = await _drive(run, stack, people, trail)
        run.drive_s = time.perf_counter() - started
        await stack.settle(10 if args.faults != "none" else 5)  # late redeliveries, echoes
        run.worker_cpu_s = cpu_seconds(pid) - cpu
        run.worker_calls = count_calls(stack.worker_requests(since))
        run.busy_cpu_s = run.worker_cpu_s - run.idle_cpu * (time.perf_counter() - started)
        for platform, client in clients.items():
            run.faults[platform] = faults = await _sandbox(client)
            mine = stats.platform(platform).requests
            run.worker_requests[platform] = faults["requests"] - before[platform] - mine
        deadline = time.monotonic() + 120
        while True:
            try:  # both platforms hold everything, checked through the APIs
                run.surplus = await _surplus(stack, people, conversations)
                break
            except DeskstreamError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(2)
        settings = stack.settings
        await read_topic(settings, settings.topic("audit"), lambda v, _: run.audits.append(v))
        await read_topic(settings, settings.topic("sync"), events_only(run.sync))
        await read_topic(settings, settings.topic("events"), lambda v, _: run.events.append(v))


def report(run: Run) -> list[str]:
    args, audits = run.args, run.audits
    sinks = [r for r in audits if r.stage == "sink" and r.decision.startswith(DONE)]
    written = [r for r in sinks if r.decision.startswith("written_")]
    decisions = Counter(r.decision for r in audits if r.stage in DECISIONS)
    dropped = sum(1 for r in audits if r.stage == "dedupe")
    decided: dict[str, float] = {}
    for r in sorted(audits, key=lambda r: r.at):
        if r.stage in DECISIONS and r.event_id:
            decided.setdefault(r.event_id, r.at.timestamp())
    received = {e.event_id: e.ingested_at.timestamp() for e, _ in run.sync}
    processed = [decided.get(e.event_id, ts / 1000) for e, ts in run.sync]
    window = max(processed) - min(received.values())
    rate = len(run.sync) / window
    busiest = peak_rate(processed, min(10.0, window))
    ceiling = len(run.sync) / run.busy_cpu_s
    e2e: defaultdict[str, list[float]] = defaultdict(list)
    for r in sinks:
        if "end_to_end_ms" in r.details:
            e2e[r.decision.rsplit("_on_", 1)[1]].append(float(r.details["end_to_end_ms"]))
    every = [ms for values in e2e.values() for ms in values]
    p50, p99 = percentile(every, 0.5), percentile(every, 0.99)
    normalized = [(ts / 1000 - e.ingested_at.timestamp()) * 1000 for e, ts in run.sync]
    to_decision = [(t - received[i]) * 1000 for i, t in decided.items() if i in received]
    calls = Counter[str]()
    for r in sinks:
        calls[r.decision.rsplit("_on_", 1)[1]] += int(r.details.get("api_calls") or 0)
    audit_calls, seen = calls.total(), sum(run.worker_requests.values())
    humans = HUMAN_CHANGES * args.conversations
    repeated = run.surplus + sum(n - 1 for n in Counter(r.command_id for r in written).values())
    retries = sum("~retry" in e.event_id for e, _ in run.sync)

    def cost(name: str, figure: float) -> str:
        target = TARGET_CALLS_PER_CHANGE
        return row(name, f"{figure:.2f}", target, at_most(figure, target))

    return [
        f"sync pipeline: {args.conversations} conversations, {args.rate:g} arrivals/s (0: all), "
        f"concurrency {args.concurrency}, faults {args.faults}, seed {args.seed}; one worker, "
        f"{PARTITIONS} partitions, kafka {run.bootstrap}",
        f"converged in {run.drive_s:.1f} s; {humans} human changes; records: events "
        f"{len(run.events)}, sync {len(run.sync)} ({retries} planner retries); sink writes "
        f"{len(written)} ({len(sinks) - len(written)} unchanged)",
        "",
        row("measure", "figure", "target", "ratio"),
        row("sync events/s, offered (window)", f"{rate:.1f}", f"{TARGET_PIPELINE_PER_S:.0f}",
            at_least(rate, TARGET_PIPELINE_PER_S)),
        row("sync events/s, busiest 10 s", f"{busiest:.1f}", f"{TARGET_PIPELINE_PER_S:.0f}",
            at_least(busiest, TARGET_PIPELINE_PER_S)),
        row("events per worker CPU-second", f"{ceiling:.0f}", f"{TARGET_PIPELINE_PER_S:.0f}",
            at_least(ceiling, TARGET_PIPELINE_PER_S)),
        row("end to end p50, ms", f"{p50:.1f}", TARGET_E2E_P50_MS, at_most(p50, TARGET_E2E_P50_MS)),
        row("end to end p99, ms", f"{p99:.1f}", TARGET_E2E_P99_MS, at_most(p99, TARGET_E2E_P99_MS)),
        row("webhook → sync decision p50, ms", f"{percentile(to_decision, 0.5):.1f}", "", None),
        row("webhook → sync decision p99, ms", f"{percentile(to_decision, 0.99):.1f}", "", None),
        cost("API calls / sink write (audit)", audit_calls / len(written)),
        cost("API calls / human change (audit)", audit_calls / humans),
        cost("worker requests / sink write", seen / len(written)),
        *calls_table(run.worker_calls, humans, TARGET_CALLS_PER_CHANGE),
        row("echoes suppressed", str(decisions["echo_suppressed"]), "", None),
        row("duplicates dropped", str(dropped), "", None),
        row("repeated writes (loop detector)", str(repeated), 0, "ok" if not repeated else "LOOP"),
        "(ratio > 1 meets the target: figure/target for rates, target/figure for latency and "
        "cost)",
        "",
        f"events/s = sync records ÷ {window:.1f} s (first webhook received → last event "
        f"processed); worker CPU {run.worker_cpu_s:.1f} s over the run, {run.busy_cpu_s:.1f} s "
        f"above its idle {run.idle_cpu:.1%} of a core (per event: all stages, sinks, ingest).",
        "end to end by target: " + "; ".join(f"{t} {p50_p99(v)} ({len(v)})" for t, v in e2e.items())
        + f"; webhook → normalized {p50_p99(normalized)}",
        "API calls by target, sinks' audit vs requests the sandboxes answered the worker: "
        + "; ".join(f"{p} {calls[p]} vs {n}" for p, n in run.worker_requests.items())
        + f"; writes: {dict(Counter(r.decision for r in written))}",
        "sandbox faults: " + "; ".join(
            f"{p} {f['errors']} errors, {f['bursts_429']} 429s" for p, f in run.faults.items()
        ) + f"; decisions: {dict(decisions.most_common())}",
        *route_lines(run.worker_calls),
        f"The load generator, the broker, the worker and both sandboxes share this machine's "
        f"{os.cpu_count()} cores: the figures are lower bounds of a worker on its own cores.",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20, help="open conversations")
    parser.add_argument("--rate", type=float, default=1.0, help="arrivals/s; 0: all at once")
    parser.add_argument("--faults", choices=["none", "flaky"], default="none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="the sync stage alone: canonical events in, the sinks in their dry-run mode "
        "(bench.sync_dry_run)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="STACKS",
        help="with --dry-run: the worker's CPU split (py-spy); its raw stacks kept in STACKS",
    )
    parser.add_argument("--idle", type=float, default=IDLE_S, help="seconds of idle CPU reading")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --dry-run: worker processes in one group (scale-out: each one's events "
        "per CPU-second)",
    )
    parser.add_argument(
        "--standby-replicas",
        type=int,
        default=None,
        metavar="N",
        help="with --workers: the workers' table standby replicas (default: the worker's "
        "setting, DESKSTREAM_TABLE_STANDBY_REPLICAS or 1); 0: each worker does its own share "
        "of the work only",
    )
    args = parser.parse_args()
    if args.standby_replicas is not None and args.standby_replicas < 0:
        parser.error(f"--standby-replicas {args.standby_replicas}: give 0 or more")
    if args.profile and Path(args.profile).is_dir():
        # checked now: the stacks are written at the end of a run minutes long
        parser.error(f"--profile {args.profile} is a folder; give a file for the stacks")
    os.environ.setdefault("DESKSTREAM_LOG_LEVEL", "warning")  # the worker inherits it
    settings = load_settings()
    if args.standby_replicas is None:
        args.standby_replicas = settings.table_standby_replicas
    cluster = start_cluster(settings, progress=lambda m: None)
    if args.dry_run:
        dry = DryRun(args)
        with tempfile.TemporaryDirectory(prefix="bench-sync-dry-") as folder:
            asyncio.run(
                run_dry(
                    dry,
                    cluster.bootstrap_servers,
                    Path(folder),
                    partitions=PARTITIONS,
                )
            )
        print("\n".join(dry_report(dry)))
        return
    run = Run(args, cluster.bootstrap_servers)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as folder:
        asyncio.run(_run(run, Path(folder)))
    print("\n".join(report(run)))


if __name__ == "__main__":
    main()
