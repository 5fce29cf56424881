"""Where a process spends its CPU, from ``py-spy record --format raw`` (collapsed stacks:
``frame;frame;...;leaf count`` per line, a frame being ``function (path:line)``).

Each sample goes to the first component found walking its stack from the leaf up, so time in
a library called by our code counts for the library (Avro encoding inside an agent is Avro),
and time in our code that calls nothing of interest counts for our code.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

__all__ = ["COMPONENTS", "profile", "split"]

#: (component, a fragment of the frame's path), most specific first
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("aiokafka", "/aiokafka/"),
    ("kafka client (python-kafka parts)", "/kafka/"),
    ("Avro (fastavro, schemas.codec)", "/fastavro/"),
    ("Avro (fastavro, schemas.codec)", "schemas/codec.py"),
    ("pydantic", "/pydantic"),
    ("prometheus", "/prometheus_client/"),
    ("httpx / httpcore", "/httpx/"),
    ("httpx / httpcore", "/httpcore/"),
    ("aiohttp (web)", "/aiohttp/"),
    ("link state (streams.state*, recent_ids)", "streams/state"),
    ("link state (streams.state*, recent_ids)", "streams/recent_ids.py"),
    ("planner (streams)", "/streams/"),
    ("faust / mode", "/faust/"),
    ("faust / mode", "/mode/"),
    ("sinks (app.agents.sinks, connectors)", "app/agents/sinks.py"),
    ("sinks (app.agents.sinks, connectors)", "/connectors/"),
    ("sync agent (app.agents.sync, acks, positions)", "/app/agents/"),
    ("other app code", "/app/"),
    ("schemas (models, codec helpers)", "/schemas/"),
    ("logging", "/logging/"),
    ("asyncio event loop", "/asyncio/"),
    ("json", "/json/"),
    ("uuid", "uuid.py"),
)


def _component(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, fragment in COMPONENTS:
            if fragment in frame:
                return name
    return "other (interpreter, C extensions)"


def split(lines: Iterable[str]) -> Counter[str]:
    """Samples per component, from py-spy's raw output."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            counts[_component(stack)] += int(count)
    return counts


def profile(pid: int, output: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` with py-spy (installed beside this interpreter); stop it with
    ``send_signal(SIGINT)`` and read ``output`` with ``split``."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
         "--full-filenames", "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def report(counts: Counter[str]) -> list[str]:
    total = counts.total() or 1
    return [f"  {name:48} {n / total:6.1%}" for name, n in counts.most_common()]
