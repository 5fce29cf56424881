"""What a traffic run did, for people (the summary table) and for checks (the ledger).

* :class:`TrafficStats`: requests per platform with their latencies, 429s (and Salesforce's
  ``REQUEST_LIMIT_EXCEEDED``), 5xx, transport errors, retries and give-ups; conversations by
  outcome; unexpected errors with a few redacted samples.
* :class:`Ledger`: the ground truth of what the run created, one :class:`LedgerEntry` per
  conversation with the ids it made on each platform (``"intercom.conversation"``,
  ``"zendesk.ticket"`` ...), how many writes of each kind it did (``"intercom.part"``,
  ``"zendesk.comment"``, ``"sunshine.message"`` ...) and its outcome. Tests and benchmarks
  compare it with the platforms' state, or with what the sync mirrored.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sandboxes.base.traffic.model import Scenario

__all__ = [
    "OUTCOMES",
    "Ledger",
    "LedgerEntry",
    "PlatformStats",
    "TrafficReport",
    "TrafficStats",
]

#: ``resolved``: ended without a human; ``solved``: a human solved it; ``awaiting_sync``: an
#: escalation no sync mirrored in time; ``failed``: an unexpected error; ``cancelled``: still
#: running when the drain timeout ended the run.
OUTCOMES = ("pending", "resolved", "solved", "awaiting_sync", "failed", "cancelled")
_MAX_SAMPLES = 20


@dataclass
class PlatformStats:
    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    retries: int = 0
    gave_up: int = 0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of request latencies in seconds; 0 without requests."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class TrafficStats:
    platforms: defaultdict[str, PlatformStats] = field(
        default_factory=lambda: defaultdict(PlatformStats)
    )
    #: started, escalated, handed_off, and one key per outcome once finished.
    conversations: Counter[str] = field(default_factory=Counter)
    by_scenario: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def platform(self, name: str) -> PlatformStats:
        return self.platforms[name]

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < _MAX_SAMPLES:
            self.error_samples.append(message)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.platforms.values())

    def progress_line(self, elapsed: float) -> str:
        c = self.conversations
        return (
            f"t={elapsed:6.1f}s started={c['started']} active={self.in_flight} "
            f"escalated={c['escalated']} solved={c['solved']} resolved={c['resolved']} "
            f"requests={self.requests} "
            f"429={sum(p.rate_limited for p in self.platforms.values())} "
            f"5xx={sum(p.server_errors for p in self.platforms.values())} errors={self.errors}"
        )


@dataclass
class LedgerEntry:
    """One conversation: the ids it created and what it wrote, per platform."""

    arrival: int
    scenario: Scenario
    customer: str
    email: str
    ids: dict[str, str] = field(default_factory=dict)
    writes: Counter[str] = field(default_factory=Counter)
    outcome: str = "pending"
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "arrival": self.arrival,
            "scenario": self.scenario.value,
            "customer": self.customer,
            "email": self.email,
            "ids": dict(self.ids),
            "writes": dict(self.writes),
            "outcome": self.outcome,
            "error": self.error,
            "started_at": round(self.started_at, 3),
            "finished_at": None if self.finished_at is None else round(self.finished_at, 3),
        }


@dataclass
class Ledger:
    entries: list[LedgerEntry] = field(default_factory=list)
    #: The people each platform knows after the run: emails (or keys), per platform.
    people: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def ids(self, kind: str) -> list[str]:
        """Every id of ``kind`` (``"intercom.conversation"``) the run created, in order."""
        return [e.ids[kind] for e in self.entries if kind in e.ids]

    def writes(self, kind: str) -> int:
        return sum(e.writes[kind] for e in self.entries)

    def outcomes(self) -> Counter[str]:
        return Counter(e.outcome for e in self.entries)

    def by_scenario(self) -> Counter[str]:
        return Counter(e.scenario.value for e in self.entries)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": [e.as_dict() for e in self.entries],
            "people": {k: sorted(v) for k, v in sorted(self.people.items())},
        }


@dataclass
class TrafficReport:
    stats: TrafficStats
    ledger: Ledger
    elapsed_s: float
    planned: int

    def table(self) -> str:
        """The final summary: one row per platform, then conversations by scenario/outcome."""
        rows = [
            f"{'platform':<22} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'429':>5} {'5xx':>5} {'retries':>7} {'gave up':>7}"
        ]
        elapsed = max(self.elapsed_s, 1e-9)
        for name, p in sorted(self.stats.platforms.items()):
            rows.append(
                f"{name:<22} {p.requests:>8} {p.requests / elapsed:>7.1f} "
                f"{p.percentile(0.5) * 1000:>7.1f} {p.percentile(0.95) * 1000:>7.1f} "
                f"{p.rate_limited:>5} {p.server_errors:>5} {p.retries:>7} {p.gave_up:>7}"
            )
        outcomes = self.ledger.outcomes()
        rows.append("")
        rows.append(f"{'scenario':<22} {'count':>6}   " + " ".join(f"{o:>13}" for o in OUTCOMES))
        for scenario in Scenario:
            entries = [e for e in self.ledger.entries if e.scenario is scenario]
            if not entries:
                continue
            counts = Counter(e.outcome for e in entries)
            cells = " ".join(f"{counts[o]:>13}" for o in OUTCOMES)
            rows.append(f"{scenario.value:<22} {len(entries):>6}   {cells}")
        total = " ".join(f"{outcomes[o]:>13}" for o in OUTCOMES)
        rows.append(f"{'total':<22} {len(self.ledger.entries):>6}   {total}")
        c = self.stats.conversations
        rows.append("")
        rows.append(
            f"planned={self.planned} started={c['started']} escalated={c['escalated']} "
            f"handed_off={c['handed_off']} solved={c['solved']} resolved={c['resolved']} "
            f"max_in_flight={self.stats.max_in_flight} elapsed={self.elapsed_s:.1f}s "
            f"unexpected_errors={self.stats.errors}"
        )
        rows.extend(f"  error: {sample}" for sample in self.stats.error_samples)
        return "\n".join(rows)
