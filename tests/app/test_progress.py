"""The progress line of long commands: done / total, the rate, the time left."""

from __future__ import annotations

import io

from app.progress import Progress, render


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_render_with_a_total_shows_the_share_the_rate_and_the_time_left() -> None:
    assert render("backfill a->b", 120, 300, 12.0) == "backfill a->b: 120/300 (40%) 12.0/s ETA 15s"
    assert render("x", 0, 300, 0.0) == "x: 0/300 (0%) 0.0/s ETA ?"
    assert render("x", 10, 7300, 1.0).endswith("ETA 2h01m")
    assert render("x", 5, None, 2.5, note="waiting") == "x: 5 done 2.5/s [waiting]"


def test_a_resumed_run_counts_earlier_work_in_done_but_not_in_the_rate() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("backfill", stream=out, clock=clock, done=150, every_s=0)
    clock.now += 10
    progress.advance(50, total=300)
    assert progress.rate == 5.0  # 50 in 10 s, not 200
    assert out.getvalue().endswith("backfill: 200/300 (66%) 5.0/s ETA 20s")
    progress.finish("done")
    assert out.getvalue().endswith("\ndone\n")


def test_the_line_is_rewritten_at_most_every_interval() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("r", stream=out, clock=clock, every_s=1.0)
    for _ in range(5):
        progress.advance(1)
    assert out.getvalue().count("\r") == 1
    clock.now += 1
    progress.advance(1)
    assert out.getvalue().count("\r") == 2
