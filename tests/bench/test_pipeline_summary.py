"""``bench.pipeline``'s summary: the scale-out rows (with and without standby copies) and the
standby copy's cost, read from the reports of the dry-run sync benchmarks."""

from __future__ import annotations

from bench.figures import row
from bench.pipeline import summary


def _dry_run_report(per_cpu: int, cpu_per_event_us: int, each: tuple[int, ...] = ()) -> list[str]:
    """The lines of ``bench.sync_dry_run.report`` the summary reads, as it prints them."""
    lines = [
        row("sync events per worker CPU-second", str(per_cpu), "2500", per_cpu / 2500),
        row("worker CPU per sync event, µs", str(cpu_per_event_us), "", None),
    ]
    return lines + [
        f"worker {n} of {len(each)}: 12000 sync events read, 15.0 s busy CPU, "
        f"{rate} sync events per CPU-second"
        for n, rate in enumerate(each, 1)
    ]


def test_scale_out_rows_compare_each_worker_with_one_worker_with_and_without_standbys() -> None:
    lines = summary(
        {
            "sync-dry": _dry_run_report(1000, 1000),
            "sync-dry-2": _dry_run_report(700, 1430, (690, 710)),
            "sync-dry-2-no-standby": _dry_run_report(800, 1250, (800, 820)),
        }
    )
    # row(): the name in 34 columns, then the figure in 10
    shares = {line[:34].rstrip(): float(line[35:45]) for line in lines if " of 2 " in line}
    assert shares == {
        "scale-out, same load: 1 of 2": 0.69,
        "scale-out, same load: 2 of 2": 0.71,
        "scale-out, no standby: 1 of 2": 0.80,
        "scale-out, no standby: 2 of 2": 0.82,
    }
    assert "scale-out, twice the load: not measured (sync-dry or sync-dry-2x failed or was " \
        "skipped)" in lines  # fmt: skip
    cost = [line for line in lines if line.startswith("the standby copy")]
    assert cost == [
        "the standby copy, 2 workers: +180 µs of worker CPU per sync event (1430 with it, "
        "1250 without: +14%)"
    ]


def test_no_standby_cost_without_both_two_worker_runs() -> None:
    lines = summary(
        {"sync-dry": _dry_run_report(1000, 1000), "sync-dry-2": _dry_run_report(700, 1430)}
    )
    assert not [line for line in lines if line.startswith("the standby copy")]
