"""A metric's children labelled once (``app.metrics.Labelled``): the same series ``labels``
gives, created on first use."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.metrics import Labelled


def _series(registry: CollectorRegistry, prefix: str) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in lines if line.startswith(prefix))
    }


def test_counts_land_in_the_series_labels_gives_and_none_appears_before_its_first_use() -> None:
    registry = CollectorRegistry()
    writes = Counter("writes", "writes", ["platform", "outcome"], registry=registry)
    labelled = Labelled(writes)
    assert _series(registry, "writes_total") == {}

    labelled("zendesk", "written").inc()
    labelled("zendesk", "written").inc(2)
    labelled("intercom", "failed").inc()
    writes.labels("zendesk", "written").inc()  # the same series, by either way

    assert labelled("zendesk", "written") is writes.labels("zendesk", "written")
    assert _series(registry, "writes_total") == {
        'writes_total{outcome="written",platform="zendesk"}': 4.0,
        'writes_total{outcome="failed",platform="intercom"}': 1.0,
    }


def test_a_histogram_child_observes_into_its_own_series() -> None:
    registry = CollectorRegistry()
    latency = Histogram("latency", "latency", ["platform"], buckets=(1.0,), registry=registry)
    labelled = Labelled(latency)
    labelled("zendesk").observe(0.5)
    labelled("zendesk").observe(2.0)

    assert _series(registry, "latency_count") == {'latency_count{platform="zendesk"}': 2.0}
    assert _series(registry, "latency_bucket") == {
        'latency_bucket{le="1.0",platform="zendesk"}': 1.0,
        'latency_bucket{le="+Inf",platform="zendesk"}': 2.0,
    }
