"""The pure parts of ``deskstream replay`` (``streams.replay``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.codec import decode_dict, encode
from streams.replay import (
    Checkpoint,
    ReplayFilter,
    ReplayJob,
    Span,
    in_time_range,
    parse_time,
    progress_line,
)
from tests.schemas.examples import EXAMPLES


def _envelope(label: str = "Envelope-case") -> dict[str, Any]:
    name, datum = decode_dict(encode(EXAMPLES[label]))
    assert name == "deskstream.Envelope"
    return datum


@pytest.mark.parametrize(
    ("kept", "criteria"),
    [
        (True, {}),
        (True, {"platforms": ["zendesk", "intercom"]}),
        (False, {"platforms": ["intercom"]}),
        (True, {"entity_types": ["case"]}),
        (False, {"entity_types": ["message"]}),
        (True, {"event_types": ["zen:event-type:ticket.status_changed"]}),
        (False, {"event_types": ["ticket.created"]}),
        (True, {"links": ["link-5f1e"]}),
        (False, {"links": ["link-other"]}),
        (True, {"entity_ids": ["12345"]}),
        (False, {"entity_ids": ["12345"], "platforms": ["salesforce"]}),
    ],
    ids=[
        "no-criteria",
        "platform-any-of",
        "platform-other",
        "entity-type",
        "entity-type-other",
        "event-type",
        "event-type-other",
        "link",
        "link-other",
        "entity-id",
        "all-criteria-must-hold",
    ],
)
def test_a_filter_keeps_an_event_when_every_criterion_holds(
    kept: bool, criteria: dict[str, list[str]]
) -> None:
    assert ReplayFilter.of(**criteria).matches(_envelope()) is kept


def test_an_event_without_a_link_never_matches_a_link_filter() -> None:
    envelope = _envelope()
    envelope["link_id"] = None
    assert not ReplayFilter.of(links=["link-5f1e"]).matches(envelope)
    assert ReplayFilter.of().keeps_everything
    assert not ReplayFilter.of(links=["x"]).keeps_everything


def test_times_are_iso_8601_utc_when_bare_and_the_range_is_half_open() -> None:
    assert parse_time("2026-11-21") == datetime(2026, 11, 21, tzinfo=UTC)
    assert parse_time("2026-11-21T09:30:00+01:00") == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("last tuesday")
    assert in_time_range(1000, 1000, 2000)
    assert not in_time_range(2000, 1000, 2000)
    assert in_time_range(5, None, None)


def test_a_checkpoint_reads_back_what_it_wrote_and_refuses_another_version() -> None:
    job = ReplayJob("deskstream.events", 1, 2, ReplayFilter.of(platforms=["zendesk"]), "topic", "t")
    checkpoint = Checkpoint(
        job=job.to_json(),
        spans={0: Span(0, 10, 4), 1: Span(5, 5, 5)},
        run_id="abc",
        flushes=2,
        written=3,
        filtered=1,
        target_offsets={0: 7},
    )
    again = Checkpoint.from_json(checkpoint.to_json())
    assert again == checkpoint
    assert (again.remaining, again.total) == (6, 10)
    with pytest.raises(ValueError, match="version"):
        Checkpoint.from_json({**checkpoint.to_json(), "version": 99})


def test_progress_shows_count_share_rate_and_eta() -> None:
    line = progress_line(done=2_000, total=10_000, elapsed=4.0, written=1_500)
    assert line == "2,000/10,000 records   20.0%  500 rec/s  ETA 0:00:16  written 1,500"
    assert "ETA --:--" in progress_line(0, 10, 0.0, 0)
    assert "ETA 0:00:00" in progress_line(10, 10, 2.0, 10)
