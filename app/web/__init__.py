"""The worker's HTTP surface: ``/health``, ``/ready``, ``/metrics``, ``/webhooks/{id}``,
``/handoff``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.faust_metrics import setup_faust_metrics
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
    setup_faust_metrics(bundle.app, bundle.metrics.registry, "/metrics")
    register_health(bundle)
    register_handoff(bundle, HandoffIntake(register_webhooks(bundle)))
