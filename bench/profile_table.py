"""Where a process's CPU went, from a py-spy raw profile: by component and by function.

    .venv/bin/python -m bench.profile_table PROFILE.txt [--top 25]

``PROFILE.txt`` is py-spy's ``--format raw`` output (collapsed stacks with sample counts, as
``bench.profiling.py_spy`` writes). A sample's component is the package of its innermost
Python frame (time in C code counts for the Python function that called it), so the table
answers "how much of the CPU is aiokafka, Faust, pydantic, our code ...".
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

__all__ = ["component_of", "summarise"]

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
#: first path element → component; anything unlisted counts under "other"
_COMPONENTS = {
    "aiokafka": "aiokafka",
    "kafka": "aiokafka",
    "faust": "faust + mode",
    "mode": "faust + mode",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "fastavro": "fastavro",
    "httpx": "httpx + httpcore",
    "httpcore": "httpx + httpcore",
    "h11": "httpx + httpcore",
    "h2": "httpx + httpcore",
    "anyio": "httpx + httpcore",
    "aiohttp": "aiohttp",
    "yarl": "aiohttp",
    "multidict": "aiohttp",
    "asyncio": "asyncio",
    "selectors": "asyncio",
    "json": "json",
    "prometheus_client": "prometheus",
    "app": "deskstream",
    "streams": "deskstream",
    "connectors": "deskstream",
    "schemas": "deskstream",
    "sandboxes": "sandboxes",
    "bench": "bench",
}


def component_of(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    return _COMPONENTS.get(parts[0].removesuffix(".py"), "other")


def summarise(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """(samples, by component, by innermost function, by function anywhere in the stack)."""
    total = 0
    components: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples = int(count)
        total += samples
        names = [re.sub(r":\d+\)$", ")", f) for f in frames]
        components[component_of(frames[-1])] += samples
        own[names[-1]] += samples
        for name in set(names):
            inclusive[name] += samples
    return total, components, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with args.profile.open() as lines:
        total, components, own, inclusive = summarise(lines)
    if not total:
        raise SystemExit(f"{args.profile}: no samples (was the process busy while sampled?)")
    print(f"{total} samples")
    for title, counter in (
        ("component", components),
        ("function (own time)", own),
        ("function (with callees)", inclusive),
    ):
        print(f"\n{'share':>6}  {title}")
        for name, samples in counter.most_common(args.top):
            print(f"{100 * samples / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
