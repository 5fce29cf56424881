"""Backfill throughput, and the share of the platforms' rate budgets used, while live traffic
runs beside it.

    .venv/bin/python -m bench.backfill [--conversations 300] [--live 6] [--limit 3000]

Starts (or reuses) the local Kafka stack and a rehearsal (one worker, webhooks, the Intercom →
Zendesk rules) whose Zendesk account allows ``--limit`` calls a minute (the worker is told the
same). ``--conversations`` conversations are escalated in Intercom while its webhooks are off
(records Deskstream never saw); ``--live`` others are escalated with webhooks on. Then
``deskstream backfill --route intercom->zendesk`` runs as an operator runs it while, beside
it, two live customers in turn write every 2 s or so (in turn: a ticket written every few
seconds hits Zendesk's 30 updates per ticket in 10 minutes, which would measure that limit);
the run ends once every backfilled conversation has its ticket.

Figures: the backfill's read throughput (records/s, from its own summary line) and the
pipeline's (backfilled tickets created/s, first page to last ticket); calls per minute made
with the worker's credentials during the run against each platform's limit (Zendesk: the
sinks' writes for backfill and live traffic; Intercom: mostly the backfill's reads, search and
conversation reads, which it caps at ``--share``); and the live traffic's latency (a customer's
reply → the worker's write of it to Zendesk) before and during the backfill: live traffic
keeps priority when the second stays near the first. No design target names a backfill
figure; the sinks' ≥ 95 % of a limit under backlog is shown for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.kafka_local.stack import start_cluster
from app.rehearsal import LoggedRequest, SyncStack, sync_stack
from app.settings import load_settings
from bench.figures import percentile, row
from sandboxes.base.faults import FaultProfile
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer

_READ = re.compile(r"(\d+) records sent in \d+ pages \(([\d.]+)/s\), (\d+) s waiting")


def _ticket_write(request: LoggedRequest, ticket: int) -> bool:
    return request.platform == "zendesk" and f"/tickets/{ticket}" in request.path


async def _live_round(stack: SyncStack, live: dict[str, tuple[str, int]], n: int) -> list[float]:
    """Two live customers write once (in turn, so no ticket comes near Zendesk's 30 updates
    per ticket in 10 minutes); the ms from each reply to its write in Zendesk."""
    turn = list(live.items())
    chosen = dict(turn[(2 * n + i) % len(turn)] for i in range(min(2, len(turn))))

    async def one(conversation: str, email: str, ticket: int) -> float:
        customer = IntercomCustomer(stack.ic, email=email, name="Live")
        sent = time.monotonic()
        await customer.reply(conversation, f"live {n} {conversation}")
        while time.monotonic() - sent < 60:
            for request in stack.worker_writes(sent):
                if _ticket_write(request, ticket):
                    return (request.at - sent) * 1000
            await asyncio.sleep(0.02)
        return float("nan")

    return list(await asyncio.gather(*(one(c, e, t) for c, (e, t) in chosen.items())))


async def _measure(bootstrap: str, args: argparse.Namespace) -> list[str]:
    run = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as folder:
        async with sync_stack(
            bootstrap,
            Path(folder),
            name="bench-backfill",
            zendesk_config={"rate_limit_per_minute": args.limit},
            extra_env={"DESKSTREAM_CONNECTORS__zendesk__RATE_LIMIT_PER_MINUTE": str(args.limit)},
        ) as stack:
            admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)

            async def escalate(email: str, tag: str | None) -> str:
                customer = IntercomCustomer(stack.ic, email=email, name="Customer")
                conversation = await customer.start_conversation(f"bench {email}")
                if tag:
                    await admin.tag(conversation, tag)
                await admin.tag(conversation, "escalate")
                return conversation

            live: dict[str, tuple[str, int]] = {}
            for n in range(args.live):
                email = f"live-{run}-{n}@example.com"
                conversation = await escalate(email, None)
                ticket = await stack.eventually(_ticket(stack, conversation), "a live ticket")
                live[conversation] = (email, ticket["id"])
            before = [ms for n in range(5) for ms in await _live_round(stack, live, n)]

            await stack.set_faults("intercom", FaultProfile(webhooks_off=True))
            backlog: list[str] = []
            for first in range(0, args.conversations, 25):
                emails = [
                    f"bf-{run}-{n}@example.com"
                    for n in range(first, min(first + 25, args.conversations))
                ]
                backlog += await asyncio.gather(*(escalate(e, f"bf-{run}") for e in emails))
            await stack.set_faults("intercom", FaultProfile())
            links = {stack.link(c) for c in backlog}
            tag = await admin.tag_id(f"bf-{run}")

            started = time.monotonic()
            process = await stack.command(
                "backfill",
                "--route",
                "intercom->zendesk",
                "--filter",
                f"tag_ids={tag}",
                "--share",
                str(args.share),
                "--page-size",
                "50",
            )
            during: list[float] = []
            round_ = 10
            while process.returncode is None or len(await _ticketed(stack, links)) < len(links):
                during += await _live_round(stack, live, round_)
                round_ += 1
                await asyncio.sleep(2)
                if process.returncode is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), 0.01)
                if time.monotonic() - started > args.timeout:
                    raise TimeoutError("the backfilled tickets did not all appear in time")
            done = time.monotonic()
            _, err = await process.communicate()
            summary = _READ.search(err.decode(errors="replace"))
            seconds = done - started
            calls = stack.worker_requests(started)
            zendesk = sum(1 for r in calls if r.platform == "zendesk" and r.at <= done)
            intercom_reads = sum(
                1 for r in calls if r.platform == "intercom" and r.at <= done and not r.write
            )
    minutes = seconds / 60
    lost = sum(1 for ms in during if ms != ms)  # NaN: no write within a minute
    during = [ms for ms in during if ms == ms]
    intercom_limit = 10_000  # the sandbox's private-app budget
    return [
        f"backfill of {args.conversations} conversations, {args.live} live beside it "
        f"(Zendesk limit {args.limit}/min, backfill share {args.share:.0%}, "
        f"max lag {args.max_lag})",
        row(
            "backfill reads (records/s)",
            f"{float(summary.group(2)) if summary else float('nan'):.1f}",
            "",
            None,
        ),
        row("pipeline: tickets created/s", f"{len(links) / seconds:.1f}", "", None),
        row(
            "backfill waited for live (s)", f"{int(summary.group(3)) if summary else -1}", "", None
        ),
        row("zendesk calls/min ÷ limit", f"{zendesk / minutes / args.limit:.0%}", "", None),
        row(
            "intercom reads/min ÷ limit",
            f"{intercom_reads / minutes / intercom_limit:.1%}",
            f"≤{args.share:.0%}",
            None,
        ),
        row("live reply→write before (ms)", f"{percentile(before, 0.5):.0f}", "", None),
        row("live reply→write during p50", f"{percentile(during, 0.5):.0f}", "", None),
        row("live reply→write during p95", f"{percentile(during, 0.95):.0f}", "", None),
        row("live replies not written in 60 s", f"{lost}", "0", None),
    ]


def _ticket(stack: SyncStack, conversation: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    return lambda: stack.ticket_for(conversation)


async def _ticketed(stack: SyncStack, links: set[str]) -> set[str]:
    found: set[str] = set()
    page: str | None = "/api/v2/tickets?per_page=100"
    while page:
        body = (await stack.zd_agent.get(page)).json()
        found |= {t["external_id"] for t in body["tickets"] if t.get("external_id") in links}
        page = body.get("next_page")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--live", type=int, default=30, help="live conversations, 2 write a round")
    parser.add_argument("--limit", type=int, default=3000, help="Zendesk calls a minute")
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--max-lag", type=int, default=10, help="the backfill's --max-lag")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    os.environ.setdefault("DESKSTREAM_LOG_LEVEL", "warning")  # the worker inherits it
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        bootstrap = start_cluster(load_settings(), progress=lambda m: None).bootstrap_servers
    print("\n".join(asyncio.run(_measure(bootstrap, args))))


if __name__ == "__main__":
    main()
