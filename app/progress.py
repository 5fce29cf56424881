"""A progress line for long commands (``deskstream backfill``, ``reconcile``): done / total,
the rate, and the time left, rewritten in place on stderr at most a few times a second.

Pure text from plain numbers (``render``), so it is tested without a terminal; ``Progress``
adds the clock and the stream. Without a total (the platform does not say) it shows what is
done and the rate only. A resumed run counts what its earlier runs did in ``done`` but not in
the rate. A wait (live traffic has priority) is shown as the reason on the line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "render"]


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{whole:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def render(label: str, done: int, total: int | None, rate: float, *, note: str = "") -> str:
    """``label: 120/300 (40%) 12.0/s ETA 15s``; ``label: 120 done 12.0/s`` without a total."""
    if total is not None and total > 0:
        shown = min(done, total)
        eta = _duration((total - shown) / rate) if rate > 0 else "?"
        text = f"{label}: {shown}/{total} ({100 * shown // total}%) {rate:.1f}/s ETA {eta}"
    else:
        text = f"{label}: {done} done {rate:.1f}/s"
    return f"{text} [{note}]" if note else text


class Progress:
    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        every_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        done: int = 0,
    ) -> None:
        self.label = label
        self.done = done
        self.total: int | None = None
        self._stream = stream or sys.stderr
        self._every = every_s
        self._clock = clock
        self._started = clock()
        self._resumed_at = done
        self._shown_at = -1e9
        self._width = 0

    @property
    def rate(self) -> float:
        elapsed = self._clock() - self._started
        return (self.done - self._resumed_at) / elapsed if elapsed > 0 else 0.0

    def advance(self, count: int, *, total: int | None = None, note: str = "") -> None:
        self.done += count
        if total is not None:
            self.total = total
        self.show(note=note)

    def show(self, *, note: str = "", force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._shown_at < self._every:
            return
        self._shown_at = now
        line = render(self.label, self.done, self.total, self.rate, note=note)
        padding = " " * max(0, self._width - len(line))
        self._width = len(line)
        self._stream.write(f"\r{line}{padding}")
        self._stream.flush()

    def finish(self, message: str) -> None:
        self.show(force=True)
        self._stream.write(f"\n{message}\n")
        self._stream.flush()
