"""Every figure of issue 11 in one run, each with its target and ratio, the baselines included
(the bare aiokafka loop and the bare webhook acceptor, measured by ``bench.ingest_pipeline``
in the same run as normalize and the webhook burst).

    .venv/bin/python -m bench.pipeline [--quick] [--skip NAME ...]

Runs the project's benchmarks one after the other (each in its own process, so one's worker
and memory do not weigh on the next), shows each one's own report as it comes, then the
summary: every row that has a target, and the scale-out figure, the dry-run sync benchmark
with 2 worker processes in one group against 1 (issue 11: each worker's sync events per
CPU-second within 10 % of one worker's), three times: at the load one worker had (each of the
two gets half of it, in batches half as full), the same without standby copies (Faust's standby
replicas, 1 by default: each worker also reads the other's links changelog, work a lone worker
does not have; the summary prints what that copy costs per event), and at twice that load
(each gets what one had).

``--quick`` runs smaller sizes (a first look; the figures are noisier). The machine the
project develops on has 2 cores shared with the broker and other work: run it when the
machine is quiet, twice, and read ranges, not single figures (``docs/performance.md``).
Not measured here: the replay of 1M canonical events through normalize and sync.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass

from bench.figures import row

__all__ = ["main"]

#: the scale-out target: each of 2 workers at least this share of one worker's rate
SCALE_OUT_SHARE = 0.9
_RATIO = re.compile(
    r"^(?P<name>.{34}) +(?P<figure>\S+) +(?P<target>\S+) +(?P<ratio>[\d.]+|inf|ok|LOOP)$"
)
_ONE_WORKER = re.compile(r"^sync events per worker CPU-second +(?P<figure>[\d.]+) ")
_CPU_PER_EVENT = re.compile(r"^worker CPU per sync event, µs +(?P<figure>[\d.]+)")
_EACH_WORKER = re.compile(r"^worker \d+ of \d+: .* (?P<figure>[\d.]+) sync events per CPU-second$")


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    args: list[str]
    quick: list[str]
    #: sizes of the full run where the benchmark's own defaults are too small to read
    full: tuple[str, ...] = ()


#: The dry-run sync benchmark's own defaults (200 customers, 20 at a time) measure a second of
#: worker CPU, start-up included; 4,000 at 1,000 a time is ~15 s of it, batches as at volume.
_SYNC_FULL = ("--conversations", "4000", "--concurrency", "1000")
#: twice that, for 2 workers: each worker carries the load one worker carried alone
_SYNC_FULL_2X = ("--conversations", "8000", "--concurrency", "2000")

BENCHES = [
    Bench("ingest", ["bench.ingest_pipeline"], ["--records", "10000", "--deliveries", "3000"]),
    Bench("sync-dry", ["bench.sync_pipeline", "--dry-run"], ["--conversations", "300"], _SYNC_FULL),
    Bench(
        "sync-dry-2",
        ["bench.sync_pipeline", "--dry-run", "--workers", "2"],
        ["--conversations", "300"],
        _SYNC_FULL,
    ),
    Bench(
        "sync-dry-2-no-standby",
        ["bench.sync_pipeline", "--dry-run", "--workers", "2", "--standby-replicas", "0"],
        ["--conversations", "300"],
        _SYNC_FULL,
    ),
    Bench(
        "sync-dry-2x",
        ["bench.sync_pipeline", "--dry-run", "--workers", "2"],
        ["--conversations", "600"],
        _SYNC_FULL_2X,
    ),
    Bench("sync-live", ["bench.sync_pipeline", "--rate", "0"], ["--conversations", "40"]),
    Bench("link-state", ["bench.link_state"], ["--events", "2000"]),
    Bench("links-table", ["bench.links_table"], ["--links", "100000"]),
    Bench("http", ["bench.http_client"], ["--calls", "500", "--rounds", "2"]),
]


def _run(bench: Bench, quick: bool) -> list[str]:
    command = [sys.executable, "-m", *bench.args, *(bench.quick if quick else bench.full)]
    print(f"\n=== {bench.name}: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        print(f"=== {bench.name} failed (exit {done.returncode}); its figures are missing")
    return done.stdout.splitlines()


def summary(outputs: dict[str, list[str]]) -> list[str]:
    """The rows with a target from every benchmark, and the scale-out rows."""
    lines = [
        "",
        "=== issue 11, every figure with a target",
        row("measure", "figure", "target", "ratio"),
    ]
    for name, out in outputs.items():
        for line in out:
            # Rows with a target, and the baselines (the bare aiokafka loop normalize is compared
            # with, the bare webhook acceptor ingest is) with their ratio.
            if (_RATIO.match(line) or line.startswith("bare ")) and not line.startswith("measure"):
                lines.append(f"{line}   [{name}]")
    alone = _figure(outputs, "sync-dry", _ONE_WORKER)
    scale_outs = (
        ("sync-dry-2", "same load"),
        ("sync-dry-2-no-standby", "no standby"),
        ("sync-dry-2x", "twice the load"),
    )
    for two, load in scale_outs:
        each = [m for line in outputs.get(two, []) if (m := _EACH_WORKER.match(line))]
        if alone is None or not each:
            lines.append(
                f"scale-out, {load}: not measured (sync-dry or {two} failed or was skipped)"
            )
            continue
        for n, found in enumerate(each, 1):
            share = float(found["figure"]) / alone
            lines.append(
                row(f"scale-out, {load}: {n} of 2", f"{share:.2f}", SCALE_OUT_SHARE,
                    share / SCALE_OUT_SHARE)
                + f"   [{two} vs sync-dry]"
            )  # fmt: skip
    lines += _standby_cost(outputs)
    lines.append("(ratio > 1 meets the target; a shared 2-core machine: rerun and read ranges)")
    return lines


def _figure(outputs: dict[str, list[str]], bench: str, pattern: re.Pattern[str]) -> float | None:
    """The figure of the first line of ``bench``'s report that ``pattern`` matches."""
    found = next((m for line in outputs.get(bench, []) if (m := pattern.match(line))), None)
    return float(found["figure"]) if found else None


def _standby_cost(outputs: dict[str, list[str]]) -> list[str]:
    """What each of 2 workers pays per sync event for its standby copy of the other's links:
    its CPU per event with standby replicas (the default) less without."""
    with_copy = _figure(outputs, "sync-dry-2", _CPU_PER_EVENT)
    without = _figure(outputs, "sync-dry-2-no-standby", _CPU_PER_EVENT)
    if with_copy is None or without is None:
        return []
    return [
        f"the standby copy, 2 workers: {with_copy - without:+.0f} µs of worker CPU per sync "
        f"event ({with_copy:.0f} with it, {without:.0f} without: "
        f"{(with_copy - without) / without:+.0%})"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, noisier figures")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[b.name for b in BENCHES],
        help="benchmarks left out",
    )
    args = parser.parse_args()
    outputs = {b.name: _run(b, args.quick) for b in BENCHES if b.name not in args.skip}
    print("\n".join(summary(outputs)))


if __name__ == "__main__":
    main()
