"""Replay of a canonical topic over a time range: what to read, what to keep, how far it got.

Pure values for ``deskstream replay`` (the Kafka and file work is in ``app/replay/``):

- ``ReplayJob``: the arguments that define one replay (topic, time range, filters, output).
  A checkpoint belongs to one job: resuming with other arguments is refused rather than
  mixing two replays in one output.
- ``ReplayFilter``: which canonical events to keep, read from the decoded envelope (fastavro's
  dict notation, as ``schemas.codec.decode_dict`` returns it).
- ``Span``: one partition's share of the range, ``[start, end)`` in offsets, fixed when the
  replay first starts (so it terminates, whatever is written meanwhile), and ``next``, the
  first offset whose output is not durable yet.
- ``Checkpoint``: the spans and counters a replay resumes from, as JSON.
- ``progress_line``: the stderr progress text (count, percentage, rate, ETA).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "ReplayFilter",
    "ReplayJob",
    "Span",
    "in_time_range",
    "parse_time",
    "progress_line",
]

CHECKPOINT_VERSION = 1


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time; write e.g. 2026-11-21 or "
            "2026-11-21T09:30:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def in_time_range(timestamp_ms: int, start_ms: int | None, end_ms: int | None) -> bool:
    """``start <= t < end`` (each bound optional)."""
    return (start_ms is None or timestamp_ms >= start_ms) and (
        end_ms is None or timestamp_ms < end_ms
    )


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Keep an event when every given criterion holds (each one: any of its values)."""

    platforms: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    entity_ids: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        platforms: Iterable[str] = (),
        entity_types: Iterable[str] = (),
        event_types: Iterable[str] = (),
        links: Iterable[str] = (),
        entity_ids: Iterable[str] = (),
    ) -> ReplayFilter:
        return cls(
            _strings(platforms),
            _strings(entity_types),
            _strings(event_types),
            _strings(links),
            _strings(entity_ids),
        )

    @property
    def keeps_everything(self) -> bool:
        return not (
            self.platforms or self.entity_types or self.event_types or self.links or self.entity_ids
        )

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        """``envelope`` in fastavro's dict notation (``schemas.codec.decode_dict``)."""
        source = envelope["source"]
        return (
            (not self.platforms or source["platform"] in self.platforms)
            and (not self.entity_types or source["entity_type"] in self.entity_types)
            and (not self.event_types or source["event_type"] in self.event_types)
            and (not self.entity_ids or source["entity_id"] in self.entity_ids)
            and (not self.links or envelope.get("link_id") in self.links)
        )

    def to_json(self) -> dict[str, list[str]]:
        return {
            "platforms": list(self.platforms),
            "entity_types": list(self.entity_types),
            "event_types": list(self.event_types),
            "links": list(self.links),
            "entity_ids": list(self.entity_ids),
        }


@dataclass(frozen=True, slots=True)
class ReplayJob:
    """What one replay reads and where it writes; equal jobs may share a checkpoint."""

    topic: str
    #: record timestamps, Unix milliseconds: ``start_ms <= t < end_ms``
    start_ms: int | None
    end_ms: int | None
    filter: ReplayFilter
    #: "parquet" or "topic"
    output: str
    #: the folder (Parquet) or the topic written to
    target: str

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "filter": self.filter.to_json(),
            "output": self.output,
            "target": self.target,
        }

    def describe(self) -> str:
        def when(ms: int | None, default: str) -> str:
            if ms is None:
                return default
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")

        return (
            f"{self.topic} from {when(self.start_ms, 'the start')} to "
            f"{when(self.end_ms, 'the end as it stood at the first start')}"
        )


@dataclass(slots=True)
class Span:
    start: int
    end: int
    next: int

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.next)

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


@dataclass(slots=True)
class Checkpoint:
    """How far a replay got: everything before each span's ``next`` is durably written."""

    job: dict[str, Any]
    spans: dict[int, Span]
    #: a random id per replay, marking its records on a target topic (``app.replay.topic``)
    run_id: str
    #: completed flushes (Parquet: the part files numbered up to this one are kept)
    flushes: int = 0
    #: records written (rows or topic records), and records read but left out
    written: int = 0
    filtered: int = 0
    outside: int = 0
    unreadable: int = 0
    #: topic output: target partition → offset from which a resume looks for its records
    target_offsets: dict[int, int] = field(default_factory=dict)
    done: bool = False

    @property
    def remaining(self) -> int:
        return sum(span.remaining for span in self.spans.values())

    @property
    def total(self) -> int:
        return sum(span.size for span in self.spans.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "job": self.job,
            "run_id": self.run_id,
            "spans": {str(p): [s.start, s.end, s.next] for p, s in sorted(self.spans.items())},
            "flushes": self.flushes,
            "written": self.written,
            "filtered": self.filtered,
            "outside": self.outside,
            "unreadable": self.unreadable,
            "target_offsets": {str(p): o for p, o in sorted(self.target_offsets.items())},
            "done": self.done,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Checkpoint:
        if raw.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"checkpoint version {raw.get('version')!r}, this Deskstream reads "
                f"{CHECKPOINT_VERSION}"
            )
        return cls(
            job=dict(raw["job"]),
            run_id=str(raw["run_id"]),
            spans={int(p): Span(*map(int, s)) for p, s in raw["spans"].items()},
            flushes=int(raw["flushes"]),
            written=int(raw["written"]),
            filtered=int(raw["filtered"]),
            outside=int(raw["outside"]),
            unreadable=int(raw["unreadable"]),
            target_offsets={int(p): int(o) for p, o in raw["target_offsets"].items()},
            done=bool(raw["done"]),
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def progress_line(done: int, total: int, elapsed: float, written: int) -> str:
    """``12,000/48,000 records  25.0%  3,950 rec/s  ETA 0:00:09  written 11,870``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    share = 100.0 * done / total if total else 100.0
    eta = (total - done) / rate if rate > 0 else math.inf
    return (
        f"{done:,}/{total:,} records  {share:5.1f}%  {rate:,.0f} rec/s  "
        f"ETA {_duration(eta if done < total else 0.0)}  written {written:,}"
    )
