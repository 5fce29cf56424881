"""``/health`` (the process answers) and ``/ready`` (it can do its job).

Ready means: every wanted topic exists, the worker has joined its consumer group and is not
in the middle of a rebalance, and table recovery has finished. A load balancer should send
webhooks only to ready workers; an orchestrator restarts a worker only when it is unhealthy.
The topic check asks the cluster at most every 15 s, so probes do not hammer the brokers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust import web

from app.kafka_connection import bootstrap_servers
from app.topic_admin import existing_topics
from schemas.errors import KafkaStackError

if TYPE_CHECKING:
    from app.faust_app import Deskstream

__all__ = ["register_health"]

_TOPIC_CHECK_TTL = 15.0


class _TopicCheck:
    def __init__(self, bundle: Deskstream) -> None:
        self._wanted = {t.get_topic_name() for t in bundle.channels.all()}
        self._bootstrap = bootstrap_servers(bundle.settings)
        self._missing: set[str] | None = None
        self._checked_at = 0.0

    async def missing(self) -> set[str]:
        fresh = time.monotonic() - self._checked_at < _TOPIC_CHECK_TTL
        if self._missing is not None and fresh and not self._missing:
            return self._missing
        try:
            self._missing = self._wanted - await existing_topics(self._bootstrap)
        except KafkaStackError:
            return {"(cluster unreachable)"}
        self._checked_at = time.monotonic()
        return self._missing


def register_health(bundle: Deskstream) -> None:
    app = bundle.app
    topics = _TopicCheck(bundle)

    @app.page("/health")
    class HealthView(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json({"status": "ok", "app_id": bundle.settings.app_id})

    @app.page("/ready")
    class ReadyView(web.View):
        async def get(self, request: web.Request) -> web.Response:
            missing = await topics.missing()
            joined = app.rebalancing_count > 0 and not app.rebalancing
            recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
            checks: dict[str, Any] = {
                "topics": "ok" if not missing else f"missing: {', '.join(sorted(missing))}",
                "group": "ok" if joined else "joining or rebalancing",
                "tables": "ok" if recovered else "recovering",
                "assigned_partitions": len(app.consumer.assignment()) if joined else 0,
            }
            ready = not missing and joined and recovered
            status = 200 if ready else 503
            return self.json({"ready": ready, "checks": checks}, status=status)
