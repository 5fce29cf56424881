"""The Salesforce flows of the three-way sync: end-to-end latency (a change a person makes in
Salesforce → the worker's write to Zendesk) and API calls per synced change, over each CDC
transport.

    .venv/bin/python -m bench.salesforce_flows [--cases 8] [--rounds 4] [--transports pubsub,cometd]

Starts (or reuses) the local Kafka stack and, per transport, a rehearsal with the Salesforce
sandbox (``app.rehearsal.sync_stack(salesforce=...)``: one worker process, the shipped
three-way rules, comments polled and reconciliation every second). ``--cases`` conversations
are escalated in Intercom (→ one Zendesk ticket and one Salesforce Case each); then, per
round, a person in Salesforce moves every Case to the other of ``Escalated``/``Working`` and
adds a published CaseComment to it, each waiting for its own write to reach Zendesk before
the next (so every latency has one cause): a status change travels by Change Data Capture,
a comment by the CaseComment poll (no change events for CaseComment), so the two are shown
apart.

Latency: the person's call answered → the sandbox answering the worker's first write to that
ticket after it (both clocks are this process's: the sandboxes run here). API calls: every
request the worker made with its own credentials to the three sandboxes during the rounds
(reads included: CDC, polls, reconciliation, and the sink's reads), ÷ synced changes; the
same less what the worker spends when nobody changes anything (its polls, measured in a quiet
window first), and Zendesk writes ÷ changes (1.00: one write per change). No design target
names these figures; the webhook flows' end-to-end target (p95 under 5 s) is shown for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from app.kafka_local.stack import start_cluster
from app.rehearsal import LoggedRequest, SyncStack, Transport, sync_stack
from app.settings import load_settings
from bench.figures import at_most, percentile, row

TARGET_P95_MS = 5000.0
QUIET_S = 6.0
STATUSES = ("Escalated", "Working")


@dataclass
class Figures:
    transport: str
    status_ms: list[float] = field(default_factory=list)
    comment_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    calls: int = 0
    idle_calls_per_s: float = 0.0
    zendesk_writes: int = 0
    by_platform: dict[str, int] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return len(self.status_ms) + len(self.comment_ms)


def _ticket_write(request: LoggedRequest, ticket: int) -> bool:
    return (
        request.platform == "zendesk"
        and request.write
        and request.path.rstrip("/").removesuffix(".json") == f"/api/v2/tickets/{ticket}"
    )


async def _written(stack: SyncStack, ticket: int, since: float, within: float = 60.0) -> float:
    """When the sandbox answered the worker's first write to ``ticket`` at or after ``since``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for request in stack.worker_writes(since):
            if _ticket_write(request, ticket):
                return request.at
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no write to Zendesk ticket {ticket} within {within:.0f} s")


async def _measure(transport: Transport, bootstrap: str, args: argparse.Namespace) -> Figures:
    figures = Figures(transport)
    with tempfile.TemporaryDirectory(prefix=f"bench-sf-{transport}-") as folder:
        async with sync_stack(
            bootstrap, Path(folder), name=f"bench-sf-{transport}", salesforce=transport
        ) as stack:
            tag = uuid.uuid4().hex[:6]
            linked = [
                (ticket, case)
                for _, ticket, case in await asyncio.gather(
                    *(
                        stack.escalated(f"bench-{tag}-{n}@example.com", f"bench {tag}-{n}")
                        for n in range(args.cases)
                    )
                )
            ]
            person = stack.console()
            await stack.settle(3.0)
            idle = await stack.quiet_window(QUIET_S)
            figures.idle_calls_per_s = len(idle) / QUIET_S

            async def work(ticket: int, case: str) -> None:
                for round_ in range(args.rounds):
                    await person.set_status(case, STATUSES[round_ % 2])
                    changed = time.monotonic()
                    figures.status_ms.append(
                        (await _written(stack, ticket, changed) - changed) * 1000
                    )
                    await person.comment(case, f"bench comment {tag} {round_}")
                    commented = time.monotonic()
                    figures.comment_ms.append(
                        (await _written(stack, ticket, commented) - commented) * 1000
                    )

            start = time.monotonic()
            await asyncio.gather(*(work(ticket, case) for ticket, case in linked))
            await stack.settle(2.0)  # echoes and late reads belong to the changes too
            figures.seconds = time.monotonic() - start
            used = stack.worker_requests(start)
            figures.calls = len(used)
            for request in used:
                figures.by_platform[request.platform] = (
                    figures.by_platform.get(request.platform, 0) + 1
                )
            figures.zendesk_writes = sum(1 for r in used if r.platform == "zendesk" and r.write)
    return figures


def report(all_figures: list[Figures]) -> list[str]:
    lines = [f"{'measure':34} {'figure':>10} {'target':>8} {'ratio':>7}"]
    for f in all_figures:
        net = f.calls - f.idle_calls_per_s * f.seconds
        for name, sample in (("status (CDC)", f.status_ms), ("comment (poll)", f.comment_ms)):
            p50, p95 = percentile(sample, 0.5), percentile(sample, 0.95)
            lines.append(row(f"{f.transport} {name} e2e p50 ms", f"{p50:.0f}", "", None))
            lines.append(
                row(
                    f"{f.transport} {name} e2e p95 ms",
                    f"{p95:.0f}",
                    TARGET_P95_MS,
                    at_most(p95, TARGET_P95_MS),
                )
            )
        lines += [
            row(f"{f.transport} changes synced", str(f.changes), "", None),
            row(f"{f.transport} API calls / change", f"{f.calls / f.changes:.2f}", "", None),
            row(f"{f.transport} less idle polls / change", f"{net / f.changes:.2f}", "", None),
            row(f"{f.transport} Zendesk writes / change", f"{f.zendesk_writes / f.changes:.2f}",
                "1.00", None),
            row(f"{f.transport} idle calls / s", f"{f.idle_calls_per_s:.1f}", "", None),
        ]  # fmt: skip
        lines.append(
            f"  {f.transport}: {f.calls} worker calls in {f.seconds:.1f} s by platform "
            f"{dict(sorted(f.by_platform.items()))}"
        )
    lines.append(
        f"The people, the broker, the worker and the three sandboxes share this machine's "
        f"{os.cpu_count()} cores; comments wait for the 1 s CaseComment poll."
    )
    return lines


async def _run(bootstrap: str, args: argparse.Namespace) -> list[Figures]:
    chosen: list[Transport] = []
    for name in args.transports.split(","):
        if name not in ("pubsub", "cometd"):
            raise SystemExit(f"unknown transport {name!r}; give --transports pubsub,cometd")
        chosen.append("pubsub" if name == "pubsub" else "cometd")
    return [await _measure(transport, bootstrap, args) for transport in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8, help="linked conversations")
    parser.add_argument("--rounds", type=int, default=4, help="status changes and comments")
    parser.add_argument("--transports", default="pubsub,cometd")
    args = parser.parse_args()
    os.environ.setdefault("DESKSTREAM_LOG_LEVEL", "warning")  # the worker inherits it
    cluster = start_cluster(load_settings(), progress=lambda m: None)
    figures = asyncio.run(_run(cluster.bootstrap_servers, args))
    print("\n".join(report(figures)))


if __name__ == "__main__":
    main()
