"""The sinks' rate budgets on ``/metrics``, read when Prometheus scrapes.

A ``RateBudget`` keeps plain running totals (``connectors.base.ratelimit``); this collector
turns the budgets of the sinks this worker built into metric families at scrape time, so a
platform call costs no registry lookup. Labels: the platform and the connector id (both from
configuration). Summed over workers, ``deskstream_rate_budget_per_second`` is the account's
limit less headroom (each worker holds its share), so calls per second over it is the share of
the budget in use.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.base.ratelimit import RateBudget

__all__ = ["SinkBudgets"]

_LABELS = ["platform", "connector"]


class SinkBudgets(Collector):
    def __init__(self) -> None:
        self._budgets: dict[tuple[str, str], RateBudget] = {}

    def track(self, platform: str, connector_id: str, budget: RateBudget) -> None:
        """Export ``budget`` from now on (a sink is built on its first command)."""
        self._budgets[(platform, connector_id)] = budget

    def describe(self) -> Iterator[Metric]:
        # The names, before any sink exists: the registry and the dashboard test see them.
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        calls, per_second, waited, limited = families = self._families()
        for (platform, connector), budget in sorted(self._budgets.items()):
            labels = [platform, connector]
            calls.add_metric(labels, budget.calls)
            per_second.add_metric(labels, budget.per_second)
            waited.add_metric(labels, budget.waited_seconds)
            for scope, count in sorted(budget.rate_limited.items()):
                limited.add_metric([*labels, scope], count)
        return iter(families)

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily, GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily
    ]:
        return (
            CounterMetricFamily(
                "deskstream_rate_budget_calls",
                "Platform API calls the sinks' rate budgets let through (lookups included).",
                labels=_LABELS,
            ),
            GaugeMetricFamily(
                "deskstream_rate_budget_per_second",
                "Calls per second this worker's share of the credential's budget allows now.",
                labels=_LABELS,
            ),
            CounterMetricFamily(
                "deskstream_rate_budget_wait_seconds",
                "Seconds the budget made calls wait before they were sent (throttling).",
                labels=_LABELS,
            ),
            CounterMetricFamily(
                "deskstream_rate_limited",
                "429 answers, by scope: account (the whole budget waits) or record (one "
                "record's own limit, e.g. Zendesk's updates per ticket).",
                labels=[*_LABELS, "scope"],
            ),
        )
