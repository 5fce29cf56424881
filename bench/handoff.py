"""Hand-off latency: ``POST /handoff`` to the context note written on the Zendesk ticket.

    .venv/bin/python -m bench.handoff [--handoffs 40] [--warmup 3]

Starts (or reuses) the local Kafka stack and a rehearsal with an AI client
(``app.rehearsal_handoff``: one worker process, private topics, the Zendesk sandbox on
loopback). Hand-offs are posted one at a time, each for a new customer; a hand-off's latency
runs from the POST being sent to the sandbox answering the worker's ticket create, which
carries the note (read from the sandbox's request log, not by polling). The POST's own answer
time (stored with ``acks=all``) is printed beside it. Load generator, broker, worker and
sandbox share the cores: figures are upper bounds of a worker on its own cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from app.kafka_local.stack import start_cluster
from app.rehearsal import SyncStack, sync_stack
from app.rehearsal_handoff import handoff_body, handoff_stack_options, post_handoff
from app.settings import load_settings
from bench.figures import p50_p99, row

KEY = "bench-handoff-key"
_TICKET_CREATES = ("/api/v2/tickets", "/api/v2/tickets.json")


async def _one(stack: SyncStack, index: int) -> tuple[float, float]:
    """(POST answered, note written) in ms after the POST was sent."""
    run = uuid.uuid4().hex[:6]
    body = handoff_body(f"bench-{run}-{index}", f"bench-{run}-{index}@example.org")
    sent = time.monotonic()
    answer = await post_handoff(stack, KEY, body)
    answered = time.monotonic()
    answer.raise_for_status()
    deadline = sent + 60
    while time.monotonic() < deadline:
        for request in stack.requests.since(sent, caller="worker"):
            created = request.method == "POST" and request.path in _TICKET_CREATES
            if created and 200 <= request.status < 300:
                return (answered - sent) * 1000, (request.at - sent) * 1000
        await asyncio.sleep(0.005)
    raise TimeoutError(f"hand-off {index}: no ticket created within 60 s; see the worker log")


async def _run(bootstrap: str, folder: Path, handoffs: int, warmup: int) -> list[str]:
    async with sync_stack(
        bootstrap, folder, name="bench-handoff", **handoff_stack_options(KEY)
    ) as stack:
        for index in range(warmup):
            await _one(stack, -1 - index)
        measured = [await _one(stack, index) for index in range(handoffs)]
    answers, notes = [a for a, _ in measured], [n for _, n in measured]
    return [
        f"{handoffs} hand-offs, one at a time ({warmup} warm-up), kafka {bootstrap}, "
        f"{os.cpu_count()} cores shared with the broker and the sandbox",
        row("POST /handoff answered (acks=all)", p50_p99(answers), "", None),
        row("POST /handoff → note written", p50_p99(notes), "", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handoffs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DESKSTREAM_LOG_LEVEL", "warning")  # the worker inherits it
    cluster = start_cluster(load_settings(), progress=lambda m: None)
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as folder:
        lines = asyncio.run(
            _run(cluster.bootstrap_servers, Path(folder), args.handoffs, args.warmup)
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
