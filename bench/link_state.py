"""One link's state and the planner's cost as the link ages, against issue 11's targets.

    .venv/bin/python -m bench.link_state [--events 10000] [--window 200]

Drives one link through ``--events`` inputs (``bench.link_history``: an escalated
conversation, then people writing, answering, solving and reopening on both sides; every
command answered by its write result and the target's echo) exactly as the sync agent does:
``streams.outbox.step`` from the table's bytes to the table's bytes. Prints, after 10, 100,
1,000 and 10,000 inputs, the state's size in the table (target ≤ 4 KB whatever the history)
and the CPU time of one planner call (decode, decide, encode; the median of the ``--window``
calls before the mark), whose ratio to the 10-input figure shows whether the cost depends on
the link's age (target: flat).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

from bench.figures import at_most, row
from bench.link_history import CONFIG, History
from streams import state_codec
from streams.outbox import Position, step
from streams.sync import SyncPlanner

TARGET_STATE_BYTES = 4096
#: a planner call at 10,000 inputs may cost at most this much more than at 10
TARGET_AGE_RATIO = 1.5
MARKS = (10, 100, 1_000, 10_000)


def _parts(raw: bytes) -> str:
    """Where the bytes go: the biggest parts of the state."""
    state = state_codec.decode(raw)
    sizes = {
        "seen": len(state.seen),
        "mirrors": len(json.dumps(state.mirrors)),
        "thread": len(json.dumps([state.thread, state.thread_ids])),
        "records": len(json.dumps(state.records)),
        "registers": len(json.dumps(state.registers)),
        "outbox": len(state_codec.encode_outbox(state.outbox)),
    }
    return ", ".join(f"{k} {v}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))


def everything_before(offset: int) -> Callable[[str, int], int]:
    """The delivery watermark when every earlier input's outputs are in Kafka."""
    return lambda topic, partition: offset


def drive(events: int) -> Iterator[tuple[int, bytes | None, float]]:
    """One link through ``events`` inputs as the sync agent steps it: each input's number,
    the table's bytes after it, and the CPU µs of its step."""
    planner = SyncPlanner(CONFIG)
    history = History()
    raw: bytes | None = None
    for n in range(1, events + 1):
        record = history.next()
        started = time.process_time_ns()
        done = step(
            planner,
            raw,
            record,
            position=Position("deskstream.sync", 0, n),
            delivered_below=everything_before(n),
            may_have_run=False,
            now=history.world.tick(),
        )
        cost = (time.process_time_ns() - started) / 1e3
        if done.state is not None:
            raw = done.state
        history.answer(done.commands)
        yield n, raw, cost


def run(events: int, window: int) -> list[str]:
    costs: list[float] = []
    marks = {m for m in MARKS if m <= events} | {events}
    found: dict[int, tuple[int, float, str]] = {}
    for n, raw, cost in drive(events):
        costs.append(cost)
        if n in marks and raw is not None:
            recent = costs[-min(window, len(costs)) :]
            found[n] = (len(raw), statistics.median(recent), _parts(raw))
    return report(events, found)


def report(events: int, found: dict[int, tuple[int, float, str]]) -> list[str]:
    first = min(found)
    base = found[first][1]
    lines = [
        f"link state: one link, {events} inputs (events and write results, echoes included)",
        "",
        row("measure", "figure", "target", "ratio"),
    ]
    for n, (size, _, _) in sorted(found.items()):
        lines.append(
            row(f"state bytes after {n} inputs", str(size), TARGET_STATE_BYTES,
                at_most(size, TARGET_STATE_BYTES))
        )  # fmt: skip
    for n, (_, cost, _) in sorted(found.items()):
        age = cost / base
        lines.append(
            row(f"planner µs/call after {n}", f"{cost:.0f}", "", None)
            if n == first
            else row(f"planner µs/call after {n}", f"{cost:.0f}", f"x{TARGET_AGE_RATIO:g}",
                     at_most(age, TARGET_AGE_RATIO))
        )  # fmt: skip
    lines += [
        "(ratio > 1 meets the target; the cost row's target: at most "
        f"{TARGET_AGE_RATIO:g} times the cost after {first} inputs)",
        "",
        "planner call = the sync agent's step: decode the table's bytes, decide, encode "
        "(CPU time, median of the calls before the mark)",
    ]
    lines += [f"bytes after {n}: {parts}" for n, (_, _, parts) in sorted(found.items())]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=200, help="calls per cost figure")
    args = parser.parse_args(argv)
    print("\n".join(run(args.events, args.window)))


if __name__ == "__main__":
    main()
