"""Deskstream's own Prometheus metrics, on the same registry as Faust's sensors.

Names are fixed (``deskstream_*``), not derived from the app id, so one dashboard serves every
deployment; the scrape target tells workers apart. Labels are bounded: connector ids and
platforms come from configuration, outcomes and stages from fixed vocabularies. Nothing from a
payload becomes a label.

``ops/grafana/dashboards/deskstream.json`` charts them; a test checks that every metric a
panel queries is registered here (or by Faust's sensors, or a connector's collector).
Nothing here is looked up per event that a timer or a scrape can measure instead: the lag
per stage is set by each agent's 5 s timer, the dead letters waiting by a 30 s task, and the
rate budgets are read from the sinks at scrape time (``app.budget_metrics``).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from app.budget_metrics import SinkBudgets
from connectors.base.registry import connector_collectors

__all__ = ["Labelled", "Metrics"]

#: a labelled metric (its ``labels`` returns the child of the same type)
M = TypeVar("M", Counter, Gauge, Histogram)

_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: up to the batched agents' BATCH_MAX (500)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500)


class Labelled(Generic[M]):
    """A metric's children, each labelled once: ``labels`` makes its key of the values and
    takes the metric's lock on every call (about 2 µs; the sync stage and the sinks count
    once per decision and per command). A child is created on first use, as ``labels``
    creates it, so no series appears before something is counted in it."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # `*_created` series double the scrape size and no dashboard of ours reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        prefix = "deskstream"
        self.webhooks = Counter(
            f"{prefix}_webhooks_total",
            "Webhook deliveries by connector and outcome (accepted, unauthorized, ..., error).",
            ["connector", "outcome"],
            registry=registry,
        )
        self.webhook_ack_seconds = Histogram(
            f"{prefix}_webhook_ack_seconds",
            "Time from request received to Kafka acknowledgement (acks=all).",
            ["connector"],
            buckets=_ACK_BUCKETS,
            registry=registry,
        )
        self.gc_pause_seconds = Histogram(
            f"{prefix}_gc_pause_seconds",
            "Python garbage-collector pauses by generation; the event loop (webhook answers "
            "included) waits through each one (app/gc_pauses.py).",
            ["generation"],
            buckets=_ACK_BUCKETS,
            registry=registry,
        )
        self.loop_lag_seconds = Histogram(
            f"{prefix}_event_loop_lag_seconds",
            "How late the worker's event loop woke a probe asking every 50 ms: every webhook "
            "answer in flight waits as long (app/loop_lag.py).",
            buckets=_ACK_BUCKETS,
            registry=registry,
        )
        self.gc_frozen_objects = Gauge(
            f"{prefix}_gc_frozen_objects",
            "Objects start-up built and the garbage collector no longer walks (gc.freeze once "
            "the worker has started; 0 before).",
            registry=registry,
        )
        self.events_normalized = Counter(
            f"{prefix}_events_normalized_total",
            "Canonical events produced by normalize.",
            ["platform"],
            registry=registry,
        )
        self.duplicates_dropped = Counter(
            f"{prefix}_duplicate_events_dropped_total",
            "Events normalize did not send again: their id was sent for the same source "
            "entity within the dedupe window (redelivered webhooks, sources read again, "
            "replays of the raw topic).",
            ["platform"],
            registry=registry,
        )
        self.dedupe_evicted = Counter(
            f"{prefix}_dedupe_ids_evicted_total",
            "Event ids normalize forgot before their window ended because a source entity "
            "had more than DESKSTREAM_EVENT_DEDUPE_MAX_IDS of them (a redelivery of one would "
            "pass to the canonical topic).",
            ["platform"],
            registry=registry,
        )
        self.quarantined = Counter(
            f"{prefix}_quarantined_total",
            "Authenticated deliveries set aside with a reason.",
            ["stage", "platform"],
            registry=registry,
        )
        self.sync_decisions = Counter(
            f"{prefix}_sync_decisions_total",
            "Decisions of the sync stage (escalated, echo_suppressed, converged, ...).",
            ["stage", "decision"],
            registry=registry,
        )
        self.batch_inputs = Histogram(
            f"{prefix}_batch_inputs",
            "Records in each batch a batched agent (normalize, sync) took: a backlog fills "
            "batches, a trickle does not, and the per-record CPU falls as they fill.",
            ["agent"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.sink_writes = Counter(
            f"{prefix}_sink_writes_total",
            "Commands executed by the sinks, by outcome (written, unchanged, failed).",
            ["platform", "outcome"],
            registry=registry,
        )
        self.sink_errors = Counter(
            f"{prefix}_sink_errors_total",
            "Failed API attempts (each retry counts).",
            ["platform"],
            registry=registry,
        )
        self.sink_lane_failures = Counter(
            f"{prefix}_sink_lane_failures_total",
            "Sink lanes whose handler raised; the lane retries the same command after a backoff.",
            ["platform"],
            registry=registry,
        )
        self.rewinds = Counter(
            f"{prefix}_rewinds_total",
            "Partitions read again over records skipped on the way to an agent, by step "
            "(started, completed, seek_failed, overdue, given_up; redelivery_dropped: a record "
            "the agent had already, delivered again by a seek back; early_dropped: a record "
            "fetched before the assignment's committed offset was looked up, which that "
            "lookup's seek brings again; app/agents/positions.py).",
            ["agent", "event"],
            registry=registry,
        )
        self.rewinds_open = Gauge(
            f"{prefix}_rewinds_open",
            "Partitions being read again over skipped records, their later records held back.",
            ["agent"],
            registry=registry,
        )
        self.api_calls = Counter(
            f"{prefix}_api_calls_total",
            "Platform API calls made by the sinks, lookups included.",
            ["platform"],
            registry=registry,
        )
        self.agent_lookups = Counter(
            f"{prefix}_agent_lookups_total",
            "Questions to a platform's agent directory (owner ⇄ assignee: agent id → email "
            "for a report, email → agent id for a write), by outcome: cached (no call), "
            "called (one API call), failed, skipped (not asked: the platform failed lately "
            "or the batch's wait for owners was spent, and the cache had no answer).",
            ["platform", "direction", "outcome"],
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            f"{prefix}_end_to_end_seconds",
            "From a change reaching Deskstream (webhook received) to the target write starting.",
            ["platform"],
            buckets=_ACK_BUCKETS,
            registry=registry,
        )
        self.webhooks_silent = Gauge(
            f"{prefix}_webhooks_silent",
            "1 while a connector has probably stopped sending webhooks: this worker wrote "
            "changes to it and no webhook came back (app/webhook_watch.py).",
            ["connector"],
            registry=registry,
        )
        self.chat_relay_waiting = Gauge(
            f"{prefix}_chat_relay_waiting",
            "The chat relay's lookups waiting for a live chat desk that stopped answering: the "
            "desk's events whose chat it must ask wait in Kafka (app/agents/chat.py).",
            ["connector"],
            registry=registry,
        )
        self.webhook_last_delivery_age_seconds = Gauge(
            f"{prefix}_webhook_last_delivery_age_seconds",
            "Seconds since this worker last accepted a webhook from the connector.",
            ["connector"],
            registry=registry,
        )
        self.source_running = Gauge(
            f"{prefix}_source_running",
            "1 on the worker that holds the source's lease and runs it (app/agents/sources.py).",
            ["source"],
            registry=registry,
        )
        self.source_starts = Counter(
            f"{prefix}_source_starts_total",
            "Times this worker took a source's lease and started it from the stored position.",
            ["source"],
            registry=registry,
        )
        self.source_batches = Counter(
            f"{prefix}_source_batches_total",
            "Batches a source read whose records Kafka acknowledged and whose position is stored.",
            ["source"],
            registry=registry,
        )
        self.source_records = Counter(
            f"{prefix}_source_records_total",
            "Raw records a source wrote to the raw topic (acknowledged by Kafka).",
            ["source"],
            registry=registry,
        )
        self.source_errors = Counter(
            f"{prefix}_source_errors_total",
            "Failed source runs; each backs off and starts again from the stored position.",
            ["source"],
            registry=registry,
        )
        self.source_position_time = Gauge(
            f"{prefix}_source_position_timestamp_seconds",
            "Source time (Unix seconds) of the newest change the stored position covers.",
            ["source"],
            registry=registry,
        )
        self.source_lag_seconds = Gauge(
            f"{prefix}_source_lag_seconds",
            "How far behind the source is: 0 when it has read everything available, else now "
            "minus the source time of its position.",
            ["source"],
            registry=registry,
        )
        self.timers_pending = Gauge(
            f"{prefix}_timers_pending",
            "Timers this worker holds until they are due (held contact creates, ...).",
            registry=registry,
        )
        self.timers_fired = Counter(
            f"{prefix}_timers_fired_total",
            "Timers sent back to the sync stage, by purpose.",
            ["purpose"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            f"{prefix}_consumer_lag_records",
            "Records of the agent's partitions held by this worker past their committed offset "
            "(high watermark minus committed, or minus the log start with nothing committed), "
            "every 5 s; summed over workers: the stage's lag.",
            ["agent"],
            registry=registry,
        )
        self.dlq_depth = Gauge(
            f"{prefix}_dlq_depth",
            "Dead letters not yet sent back by `deskstream dlq retry` (the dead-letter topic's "
            "records past the retry group's committed offsets), every 30 s; same on every worker.",
            registry=registry,
        )
        #: the sinks' rate budgets, read when /metrics is scraped
        self.budgets = SinkBudgets()
        registry.register(self.budgets)
        # Counters a connector keeps per process, outside any command (token refreshes).
        for collector in connector_collectors():
            registry.register(collector)
