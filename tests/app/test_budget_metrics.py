"""The sinks' rate budgets as Prometheus families, read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from app.budget_metrics import SinkBudgets
from connectors.base.ratelimit import RateBudget


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    }


def test_a_tracked_budget_is_exported_with_its_totals_and_share() -> None:
    registry = CollectorRegistry(auto_describe=True)
    budgets = SinkBudgets()
    registry.register(budgets)
    assert _samples(registry) == {}  # described, nothing to show before a sink exists

    budget = RateBudget(600, 60.0, headroom=1.0)
    budget.set_share(owned=2, total=8)
    budgets.track("zendesk", "support", budget)
    for _ in range(3):
        budget.delay()
    budget.refused("record")
    budget.refused("record")

    labels = '{connector="support",platform="zendesk"}'
    assert _samples(registry) == {
        f"deskstream_rate_budget_calls_total{labels}": 3.0,
        f"deskstream_rate_budget_per_second{labels}": 2.5,  # a quarter of 10 per second
        f"deskstream_rate_budget_wait_seconds_total{labels}": 0.0,
        'deskstream_rate_limited_total{connector="support",platform="zendesk",scope="record"}': (
            2.0
        ),
    }
