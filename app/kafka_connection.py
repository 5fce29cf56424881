"""Where Kafka is: the configured cluster, else the local stack this project runs."""

from __future__ import annotations

from app.kafka_local.layout import cluster_layout
from app.settings import Settings

__all__ = ["bootstrap_servers"]


def bootstrap_servers(settings: Settings) -> str:
    """``KAFKA_BOOTSTRAP_SERVERS`` when set; otherwise the local stack's brokers for the
    configured size (``DESKSTREAM_KAFKA_BROKERS``, 1 by default)."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    return cluster_layout(settings).bootstrap_servers
