"""What a replay's audit topic says: every canonical event's sync decision, counted once.

Pure: the benchmark feeds it the audit records it reads after the run, and the tests feed it
records they build. The wall time ends at the last decision's own time (``AuditRecord.at``,
the worker's clock), so reading the topic afterwards costs the measured run nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from schemas.models import AuditRecord

__all__ = ["Tally"]


@dataclass
class Tally:
    """Sync-stage decisions by event (a decision record names its event; the sinks' records
    name a command instead), and the sinks' carried-out writes by command."""

    decided: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None
    writes: Counter[str] = field(default_factory=Counter)
    #: audit records of events decided more than once (a re-read input: at least once)
    again: int = 0

    def add(self, record: AuditRecord) -> None:
        if record.stage == "sink":
            if record.command_id and record.decision.startswith("written_"):
                self.writes[record.command_id] += 1
            return
        if not record.event_id:
            return
        if record.event_id in self.decided:
            self.again += 1
            return
        self.decided.add(record.event_id)
        if self.first is None or record.at < self.first:
            self.first = record.at
        if self.last is None or record.at > self.last:
            self.last = record.at

    @property
    def repeated_writes(self) -> int:
        """Commands written more than once (must stay 0: the loop detector)."""
        return sum(n - 1 for n in self.writes.values())

    def missing(self, expected: int) -> int:
        """Events without a decision (0 once every input is accounted for)."""
        return max(0, expected - len(self.decided))
