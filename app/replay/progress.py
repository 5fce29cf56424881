"""The replay's progress on stderr: one line redrawn in place on a terminal, a line every few
seconds otherwise (logs, CI), and a last line when it ends."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from streams.replay import progress_line

__all__ = ["Progress"]

_TTY_EVERY_S = 0.25
_LOG_EVERY_S = 5.0


class Progress:
    def __init__(self, total: int, *, label: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._every = _TTY_EVERY_S if self._tty else _LOG_EVERY_S
        self._started = time.monotonic()
        self._shown = 0.0
        self.done = 0
        self.written = 0

    def _text(self) -> str:
        elapsed = time.monotonic() - self._started
        return f"{self.label}  {progress_line(self.done, self.total, elapsed, self.written)}"

    def update(self, done: int, written: int) -> None:
        self.done, self.written = done, written
        now = time.monotonic()
        if now - self._shown < self._every:
            return
        self._shown = now
        if self._tty:
            self._stream.write("\r\x1b[K" + self._text())
        else:
            self._stream.write(self._text() + "\n")
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write(("\r\x1b[K" if self._tty else "") + self._text() + "\n")
        self._stream.flush()
