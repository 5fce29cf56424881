"""API calls per synced human change, from the requests the sandboxes answered the worker.

The sandboxes log every request they answer (``app.rehearsal.RequestLog``, injected faults
included); the worker's are those made with its own credential. Each is one of three kinds:

- ``write``: may change state (the sandbox's own ``is_write``);
- ``read``: a record read by its id (``GET /api/v2/tickets/{id}/comments``, ``GET users/me``);
- ``lookup``: a record found by something else (a search, a query, a filtered collection such
  as ``GET /api/v2/tickets?external_id=``), the calls that exist only to find a target.

Pure: the benchmarks hand it the log's entries and the number of human changes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bench.figures import at_most, row

__all__ = [
    "KINDS",
    "CallCount",
    "Logged",
    "calls_table",
    "count_calls",
    "kind_of",
    "route_lines",
    "route_of",
]

KINDS = ("write", "read", "lookup")
#: a path segment naming one record: a number, or a long token with digits (Intercom and
#: Salesforce ids); API versions (``v2``, ``v60.0``) are not ids
_ID = re.compile(r"^(?:\d+|(?=[A-Za-z0-9_-]{12,}$)[A-Za-z_-]*\d[A-Za-z0-9_-]*)$")
_VERSION = re.compile(r"^v\d+(?:\.\d+)?$")
#: reads of the caller's own record, by a fixed name rather than an id
_SELF = frozenset({"me"})


class Logged(Protocol):
    """What this module reads of an ``app.rehearsal.LoggedRequest``."""

    @property
    def platform(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def write(self) -> bool: ...


def route_of(path: str) -> str:
    """``/api/v2/tickets/17/comments`` → ``/api/v2/tickets/{id}/comments``."""
    segments = path.split("/")
    return "/".join("{id}" if s and not _VERSION.match(s) and _ID.match(s) else s for s in segments)


def kind_of(method: str, path: str, write: bool) -> str:
    """``write``, ``read`` (by id) or ``lookup`` (by anything else)."""
    if write:
        return "write"
    segments = route_of(path).split("/")
    if "{id}" in segments or segments[-1] in _SELF:
        return "read"
    return "lookup"


@dataclass(frozen=True)
class CallCount:
    """The worker's requests, by platform and kind, and by route (``METHOD /route``)."""

    by_kind: Counter[tuple[str, str]]
    by_route: Counter[tuple[str, str]]

    @property
    def total(self) -> int:
        return self.by_kind.total()

    def platforms(self) -> list[str]:
        return sorted({p for p, _ in self.by_kind})


def count_calls(requests: Iterable[Logged]) -> CallCount:
    by_kind: Counter[tuple[str, str]] = Counter()
    by_route: Counter[tuple[str, str]] = Counter()
    for r in requests:
        by_kind[(r.platform, kind_of(r.method, r.path, r.write))] += 1
        by_route[(r.platform, f"{r.method} {route_of(r.path)}")] += 1
    return CallCount(by_kind, by_route)


def calls_table(count: CallCount, changes: int, target: float) -> Sequence[str]:
    """Rows of the figures table: overall, per platform, per platform and kind, each ÷ the
    human changes synced."""
    if changes <= 0:
        return ["API calls per human change: no human change synced"]

    def ratio(calls: int) -> float:
        return at_most(calls / changes, target)

    lines = [row("API calls / human change (sandboxes)", f"{count.total / changes:.2f}",
                 target, ratio(count.total))]  # fmt: skip
    for platform in count.platforms():
        mine = sum(n for (p, _), n in count.by_kind.items() if p == platform)
        lines.append(row(f"  {platform}", f"{mine / changes:.2f}", "", None))
        for kind in KINDS:
            n = count.by_kind[(platform, kind)]
            if n:
                lines.append(row(f"    {kind}", f"{n / changes:.2f}", "", None))
    return lines


def route_lines(count: CallCount) -> list[str]:
    """A line per platform naming the worker's routes and their calls, busiest first."""
    lines = []
    for platform in count.platforms():
        routes = sorted(
            ((r, n) for (p, r), n in count.by_route.items() if p == platform),
            key=lambda item: (-item[1], item[0]),
        )
        lines.append(f"{platform} calls: " + "; ".join(f"{r} {n}" for r, n in routes))
    return lines
