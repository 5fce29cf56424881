"""The watch that notices a platform which stopped sending webhooks: writes that no webhook
answers, for long enough, and not a quiet night."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from app.metrics import Metrics
from app.webhook_watch import Silence, WebhookWatch, report


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(clock: Clock, *, quiet: float = 300, writes: int = 3) -> WebhookWatch:
    return WebhookWatch(quiet_seconds=quiet, min_writes=writes, clock=clock)


def test_unanswered_writes_make_a_connector_silent_once_and_a_delivery_clears_it() -> None:
    clock = Clock()
    w = watch(clock)
    w.delivered("zd")
    for _ in range(3):
        w.wrote("zd")
    clock.now += 299
    assert w.check() == []  # not quiet long enough yet
    clock.now += 1
    assert w.check() == [Silence("zd", silent=True, quiet_for=300.0, writes=3)]
    assert w.check() == []  # reported once, not at every check
    assert w.is_silent("zd")
    clock.now += 20
    w.delivered("zd")
    assert w.check() == [Silence("zd", silent=False, quiet_for=320.0, writes=0)]
    assert not w.is_silent("zd")


def test_the_quiet_period_counts_from_the_first_unanswered_write() -> None:
    clock = Clock()
    w = watch(clock)
    w.delivered("zd")
    clock.now += 10_000  # a quiet night: nothing written, nothing expected
    assert w.check() == []
    w.wrote("zd")
    w.delivered("zd")  # the echo came back: that write is answered
    clock.now += 100
    for _ in range(3):
        w.wrote("zd")
    clock.now += 299
    assert w.check() == []
    clock.now += 1
    assert [c.connector_id for c in w.check()] == ["zd"]


def test_fewer_writes_than_the_minimum_prove_nothing() -> None:
    clock = Clock()
    w = watch(clock, writes=3)
    w.wrote("ic")
    w.wrote("ic")
    clock.now += 3600
    assert w.check() == []
    w.wrote("ic")
    (change,) = w.check()
    assert change == Silence("ic", silent=True, quiet_for=None, writes=3)


def test_connectors_are_judged_apart_and_zero_turns_the_watch_off() -> None:
    clock = Clock()
    w = watch(clock, writes=1)
    w.wrote("zd")
    w.wrote("ic")
    w.delivered("ic")
    clock.now += 300
    assert [c.connector_id for c in w.check()] == ["zd"]
    off = watch(clock, quiet=0, writes=1)
    off.wrote("zd")
    clock.now += 10_000
    assert off.check() == []


def test_report_sets_the_gauges_and_logs_one_line_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    w = watch(clock, writes=2)
    metrics = Metrics(CollectorRegistry())
    w.delivered("zd")
    w.wrote("zd")
    w.wrote("zd")
    clock.now += 400
    platforms = {"zd": "zendesk", "ic": "intercom"}
    with caplog.at_level(logging.INFO, logger="app.webhook_watch"):
        report(w, metrics, platforms)
        report(w, metrics, platforms)
    mine = [r for r in caplog.records if r.name == "app.webhook_watch"]  # not other loggers
    warnings = [r for r in mine if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    line = warnings[0].getMessage()
    assert "connector zd (zendesk) has probably stopped sending webhooks" in line
    assert "none arrived for 400 s" in line
    assert "wrote 2 changes" in line
    assert "circuit breaker" in line  # what to check, for this platform
    registry = metrics.registry
    assert registry.get_sample_value("deskstream_webhooks_silent", {"connector": "zd"}) == 1
    assert registry.get_sample_value("deskstream_webhooks_silent", {"connector": "ic"}) == 0
    age = registry.get_sample_value(
        "deskstream_webhook_last_delivery_age_seconds", {"connector": "zd"}
    )
    assert age == 400
    w.delivered("zd")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.webhook_watch"):
        report(w, metrics, platforms)
    assert [r.getMessage() for r in caplog.records if r.name == "app.webhook_watch"] == [
        "connector zd (zendesk) is sending webhooks again after being quiet for 400 s"
    ]
    assert registry.get_sample_value("deskstream_webhooks_silent", {"connector": "zd"}) == 0


def _polling_watch(clock: Clock, wall: Clock, **kw: object) -> WebhookWatch:
    return WebhookWatch(quiet_seconds=300, min_writes=3, clock=clock, wall=wall, **kw)  # type: ignore[arg-type]


def test_changes_polling_finds_after_the_last_delivery_make_a_connector_silent() -> None:
    clock, wall = Clock(), Clock()
    wall.now = 1_700_000_000.0
    w = _polling_watch(clock, wall)
    w.delivered("ic")
    clock.now += 50
    wall.now += 50
    w.polled("ic", wall.now - 100)  # made before the last delivery: that webhook came
    assert w.check() == []
    for ago in (40, 30, 20):  # made after it: webhooks that never arrived
        w.polled("ic", wall.now - ago)
    clock.now += 259  # the oldest of them is 299 s old
    wall.now += 259
    assert w.check() == []
    clock.now += 1
    wall.now += 1
    assert w.check() == [Silence("ic", silent=True, quiet_for=310.0, writes=0, polled=3)]
    w.delivered("ic")
    [cleared] = w.check()
    assert not cleared.silent


def test_changes_older_than_the_watch_and_polling_only_connectors_raise_nothing() -> None:
    clock, wall = Clock(), Clock()
    wall.now = 1_700_000_000.0
    w = _polling_watch(clock, wall, polling_only=frozenset({"zd"}))
    for ago in (3000, 2000, 1000):  # a first poll reads an hour back
        w.polled("ic", wall.now - ago)
    for _ in range(5):
        w.polled("zd", wall.now + 10)
        w.wrote("zd")
    clock.now += 10_000
    wall.now += 10_000
    assert w.check() == []


def test_the_log_line_says_what_polling_found() -> None:
    from app.webhook_watch import describe

    line = describe(Silence("ic", True, 400.0, writes=0, polled=5), "intercom")
    assert "polling found 5 changes made on intercom since" in line
    assert "Polling is bringing those changes in" in line
    assert "Developer Hub" in line
