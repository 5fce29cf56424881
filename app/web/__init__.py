"""The worker's HTTP surface: ``/health``, ``/ready``, ``/metrics``, ``/webhooks/{id}``,
``/handoff``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust.sensors.prometheus import setup_prometheus_sensors

from app.handoff import HandoffIntake
from app.web.handoff import register_handoff
from app.web.health import register_health
from app.web.webhooks import register_webhooks

if TYPE_CHECKING:
    from app.faust_app import Deskstream

__all__ = ["register_views"]


def register_views(bundle: Deskstream) -> None:
    # Faust's own sensors (throughput, latency, rebalances, lag inputs) share the registry with
    # Deskstream's counters, so one scrape of /metrics sees both.
    setup_prometheus_sensors(
        bundle.app, pattern="/metrics", registry=bundle.metrics.registry, name_prefix="faust"
    )
    register_health(bundle)
    register_handoff(bundle, HandoffIntake(register_webhooks(bundle)))
