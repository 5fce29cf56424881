"""A contact-center day against the four sandboxes: the load it makes, and whether the ledger
balances with what the platforms hold afterwards.

    .venv/bin/python -m bench.traffic_day [--rate 20] [--duration 30] [--speed 600]
                                          [--seed 1] [--faults none] [--zendesk-rpm 700]

The sandboxes run in a child process (as ``deskstream sandbox`` does) with their webhooks
going to a loopback receiver there; the generator runs in this process. Figures:

1. conversations: started per second (over the real span: arrivals that find all
   ``--concurrency`` slots taken start late) against the asked ``--rate``, by outcome;
2. API calls per second per platform, latencies, 429s, 5xx and polite retries (Zendesk's
   account budget is ``--zendesk-rpm``, 700 on Enterprise: the generator waits when told);
3. webhook deliveries per second the traffic caused, against the 2,000/s ingest target a
   traffic run is meant to help measure;
4. the ledger against the platforms' ``/_sandbox/snapshot``: conversations, parts, tickets,
   comments, messages, cases and comments, each ``ok`` or the two numbers.

No sync runs: escalations end ``awaiting_sync`` (``--mirror-timeout`` 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

import httpx

from sandboxes.base import LoopbackReceiver, load_profile, run_sandboxes
from sandboxes.base.traffic import Targets, TrafficGenerator, TrafficReport
from sandboxes.intercom import IntercomSandbox
from sandboxes.salesforce import SalesforceSandbox
from sandboxes.zendesk import ZendeskSandbox, ZendeskSandboxConfig
from sandboxes.zendesk_conversations import SunshineSandbox

INGEST_TARGET_PER_S = 2000.0


def _serve(conn: Connection, seed: int, faults: str, zendesk_rpm: int) -> None:
    """Child process: the four sandboxes and a counting receiver until the pipe closes."""

    async def main() -> None:
        async with LoopbackReceiver(record=False) as receiver:
            target = f"{receiver.url}/webhooks/{{platform}}"
            zendesk = ZendeskSandbox.create(seed=seed, faults=faults, webhook_target=target)
            config = ZendeskSandboxConfig(rate_limit_per_minute=zendesk_rpm)
            sandboxes = [
                IntercomSandbox.create(
                    seed=seed, faults=faults, webhook_target=target, webhook_concurrency=8
                ),
                ZendeskSandbox(context=zendesk.context, config=config),
                SunshineSandbox.create(seed=seed, faults=faults, webhook_target=target),
                SalesforceSandbox.create(seed=seed, faults=faults),
            ]
            async with run_sandboxes(sandboxes) as running:
                conn.send({name: running.url(name) for name in running.ports})
                loop = asyncio.get_running_loop()
                while True:
                    await loop.run_in_executor(None, conn.recv)  # EOFError ends the child
                    await running.drain_webhooks()  # Sunshine's held batch included
                    conn.send(receiver.count)

    with contextlib.suppress(EOFError):
        asyncio.run(main())


async def _snapshots(urls: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        return {n: (await http.get(f"{u}/_sandbox/snapshot")).json() for n, u in urls.items()}


def _checks(report: TrafficReport, snap: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(what, ledger, platform) for every count the ledger claims."""
    ledger = report.ledger
    intercom = snap["intercom"]["conversations"]
    tickets = snap["zendesk"]["tickets"]
    sunshine = snap["zendesk_conversations"]["conversations"]
    records = snap["salesforce"]["records"]
    return [
        ("intercom conversations", len(ledger.ids("intercom.conversation")), len(intercom)),
        (
            "intercom parts",
            ledger.writes("intercom.part"),
            sum(len(c["conversation_parts"]["conversation_parts"]) for c in intercom),
        ),
        ("zendesk tickets", len(ledger.ids("zendesk.ticket")), len(tickets)),
        (
            "zendesk comments",
            ledger.writes("zendesk.comment"),
            snap["zendesk"]["counts"]["comments"],
        ),
        ("sunshine conversations", len(ledger.ids("sunshine.conversation")), len(sunshine)),
        (
            "sunshine messages",
            ledger.writes("sunshine.message"),
            sum(len(c.get("messages", [])) for c in sunshine),
        ),
        ("salesforce cases", len(ledger.ids("salesforce.case")), len(records["Case"])),
        ("salesforce comments", ledger.writes("salesforce.comment"), len(records["CaseComment"])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="conversations per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of arrivals")
    parser.add_argument("--speed", type=float, default=600.0, help="human delays divided by")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default="none", help="none, flaky, outage, chaos")
    parser.add_argument("--zendesk-rpm", type=int, default=700, help="Zendesk requests/minute")
    parser.add_argument("--concurrency", type=int, default=400)
    args = parser.parse_args()
    load_profile(args.faults)  # fail here, not in the child

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child, args.seed, args.faults, args.zendesk_rpm))
    process.start()
    try:
        urls: dict[str, str] = parent.recv()
        parent.send("count")
        before: int = parent.recv()
        generator = TrafficGenerator(
            Targets().with_urls(urls),
            rate=args.rate,
            duration=args.duration,
            seed=args.seed,
            speed=args.speed,
            concurrency=args.concurrency,
            mirror_timeout=0,
        )
        report = asyncio.run(
            generator.run(on_progress=lambda s, t: print(s.progress_line(t)), progress_every=5)
        )
        parent.send("count")
        webhooks = parent.recv() - before
        snapshots = asyncio.run(_snapshots(urls))
    finally:
        parent.close()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()

    elapsed = report.elapsed_s
    started = report.stats.conversations["started"]
    print()
    print(report.table())
    print()
    # Arrivals that found every slot taken started late: rate over the real span, not --duration.
    span = max((e.started_at for e in report.ledger.entries), default=0.0)
    print(
        f"conversations: {started} started over {max(span, args.duration):.1f}s = "
        f"{started / max(span, args.duration):.2f}/s against {args.rate:g}/s asked; "
        f"max open {report.stats.max_in_flight} of {args.concurrency}"
    )
    print(
        f"API calls: {report.stats.requests / elapsed:.1f}/s; webhooks caused: "
        f"{webhooks} = {webhooks / elapsed:.1f}/s "
        f"({webhooks / elapsed / INGEST_TARGET_PER_S:.1%} of the {INGEST_TARGET_PER_S:,.0f}/s "
        "ingest target)"
    )
    print("ledger against the platforms:")
    balanced = True
    for what, ours, theirs in _checks(report, snapshots):
        balanced &= ours == theirs
        print(f"  {what:<24} {'ok' if ours == theirs else 'MISMATCH'} ({ours} / {theirs})")
    verdict = "balances" if balanced else "does NOT balance"
    print(f"unexpected errors: {report.stats.errors}; ledger {verdict}")


if __name__ == "__main__":
    main()
