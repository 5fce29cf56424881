"""The benchmarks' readers of the sync topic."""

from __future__ import annotations

from bench.sync_common import events_only
from schemas.models import Envelope
from tests.schemas.examples import EXAMPLES


def test_events_only_keeps_the_envelopes_of_the_sync_topic_and_leaves_its_timers() -> None:
    # The sync topic carries Envelopes and Timers (app/topics.py); a live run that set a
    # timer made the benchmark's report fail on the Timer's missing event_id.
    envelope = next(v for v in EXAMPLES.values() if isinstance(v, Envelope))
    kept: list[tuple[Envelope, int]] = []
    keep = events_only(kept)
    keep(EXAMPLES["Timer"], 1)
    keep(envelope, 2)
    assert kept == [(envelope, 2)]
