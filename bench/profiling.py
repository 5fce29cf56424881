"""py-spy around a phase of a benchmark, when asked (``--profile DIR``).

py-spy is a measuring tool, not a dependency: install it into the virtualenv to profile
(``.venv/bin/pip install py-spy``). The raw (collapsed stack) output is what
``python -m bench.profile_table`` summarises; ``flamegraph.pl`` draws it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas.errors import ConfigurationError

__all__ = ["py_spy"]


def _executable() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ConfigurationError(
            "--profile needs py-spy: install it into the virtualenv (`.venv/bin/pip install "
            "py-spy`; a measuring tool, not a dependency) or leave --profile out"
        )
    return found


@contextmanager
def py_spy(pid: int, out: Path | None, *, rate: int = 200) -> Iterator[None]:
    """Sample ``pid`` into ``out`` (raw collapsed stacks) for the duration of the block;
    nothing at all when ``out`` is None."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [_executable(), "record", "--pid", str(pid), "--rate", str(rate)]
    spy = subprocess.Popen(
        [*command, "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        spy.wait(timeout=30)
