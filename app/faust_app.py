"""The Faust application: one factory that wires settings, topics, agents and web views.

``build_app(settings)`` returns a ``Deskstream`` bundle; ``app.worker`` builds the process-wide
one for ``deskstream worker``. It first prepares the schema registry (``app.schema_registry``):
a registry that does not answer or holds a schema ours is incompatible with stops it there.
Tests build their own from their own settings, so nothing here reads the environment at import
time.

Settings chosen against the traps in ``kafka-faust.md``:
- at-least-once, never Faust's exactly-once: every effect downstream is idempotent;
- ``topic_allow_declare=False``: topics are created by ``deskstream topics create`` with
  explicit partitions and configs, never by a worker with defaults;
- ``topic_disable_leader=True``: no leader-election topic;
- ``stream_wait_empty=False``: a rebalance does not wait for in-flight events, which would
  hang on a stuck platform call; replays are harmless because effects are idempotent;
- ``producer_acks=-1``: a write is acknowledged by all in-sync replicas;
- ``consumer_auto_offset_reset="earliest"``: a new consumer group starts from the oldest
  retained record, so deliveries written before the first worker started are not skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import faust
from prometheus_client import CollectorRegistry

from app.agents.acks import Revocations
from app.agents.chat import register_chat
from app.agents.normalize import register_normalize
from app.agents.owners import OwnerEmails
from app.agents.sinks import SinkRunner, register_sinks
from app.agents.sources import register_sources
from app.agents.sync import register_sync
from app.agents.timers import register_timers
from app.batch_stream import BatchStream
from app.channels import Channels, declare_channels
from app.dlq_depth import DlqDepth
from app.faust_recovery import TableManager
from app.give_way import WaitingDeliveries
from app.kafka_connection import bootstrap_servers
from app.kafka_transport import use_eager_fetch
from app.key_partitioner import KeyPartitioner
from app.loop_lag import watch_loop_lag
from app.metrics import Metrics
from app.profiles import ProfileCache
from app.schema_registry import install_schema_registry
from app.settings import Settings
from app.tables import (
    declare_chat_sessions_table,
    declare_links_table,
    declare_recent_events_table,
)
from app.topics import producer_max_request_size, topic_specs
from app.web import register_views
from app.web.chat import register_chat_views
from app.webhook_watch import WebhookWatch, report
from connectors.base.directory import AgentDirectory
from connectors.base.registry import chat_platforms, delivery_mode, sink_platforms
from schemas.faust_codec import register_faust_codec
from streams.config import SyncConfig, load_sync_config
from streams.sync import SyncPlanner

__all__ = ["Deskstream", "build_app"]

log = logging.getLogger(__name__)

#: how long the producer lets a partition's records gather before sending them
PRODUCER_LINGER_S = 0.005
#: a partition's batch is sent when it holds this much (under every topic's message size)
PRODUCER_BATCH_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Deskstream:
    """Everything a worker runs, built from one ``Settings``."""

    app: faust.App
    settings: Settings
    channels: Channels
    metrics: Metrics
    revocations: Revocations
    watch: WebhookWatch
    #: webhook deliveries being answered, which normalize and sync give way to
    waiting: WaitingDeliveries


def build_app(settings: Settings) -> Deskstream:
    # Before anything is built: a registry that refuses our schemas stops the start here.
    install_schema_registry(settings)
    register_faust_codec()
    servers = bootstrap_servers(settings)
    replication = topic_specs(settings)[0].replication
    tables = settings.state_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in servers.split(",")],
        store=settings.table_store,
        # Table stores and faust's own files under the state dir, never in the working dir.
        datadir=str(tables / settings.app_id),
        autodiscover=False,
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=replication,
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
        producer_max_request_size=producer_max_request_size(settings),
        # Records wait up to 5 ms for company: a produce request per record (aiokafka's
        # default, linger 0) cost more CPU in socket writes than normalising the event did.
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # Kafka's murmur2 placement, each key's hash remembered (a link's records share it)
        producer_partitioner=KeyPartitioner(),
        stream_wait_empty=False,
        # Faust's repaired Cython fast path (opt-in in 0.15): a stream takes a record already
        # queued without awaiting the channel, as its pure-Python iterator always did. Its
        # other half (one decode shared by channels of the same types) never applies here:
        # every input topic has one channel.
        cython_optimizations=True,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=settings.table_standby_replicas,
        # Faust's, restarting a recovery that a second rebalance overtook (app.faust_recovery)
        TableManager=TableManager,
        # Faust's, with noack_take batches taken from the channel queue at once
        Stream=BatchStream,
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_seconds / 3),
        broker_max_poll_interval=300.0,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    use_eager_fetch(app)
    revocations = Revocations(app)
    channels = declare_channels(app, settings)
    metrics = Metrics(CollectorRegistry(auto_describe=True))
    watch = WebhookWatch(
        quiet_seconds=settings.webhook_quiet_seconds,
        min_writes=settings.webhook_quiet_min_writes,
        polling_only=frozenset(
            cid for cid, c in settings.connectors.items() if delivery_mode(c) == "polling"
        ),
    )
    bundle = Deskstream(
        app=app,
        settings=settings,
        channels=channels,
        metrics=metrics,
        revocations=revocations,
        watch=watch,
        waiting=WaitingDeliveries(),
    )
    recent = declare_recent_events_table(app, settings)
    # The rules place a hand-off in place in its record's link (streams.flows.handoff).
    rules = load_sync_config(settings.sync_config) if settings.sync_config else None
    register_normalize(
        bundle.app, channels, metrics, settings, recent, bundle.waiting, revocations, rules
    )
    register_sources(app, channels, settings, metrics, revocations, servers, watch)
    if rules is not None:
        _register_sync(bundle, servers, rules)
    register_views(bundle)
    if any(c.platform in chat_platforms() for c in settings.connectors.values()):
        sessions = declare_chat_sessions_table(app, settings)
        desks = register_chat(app, channels, settings, metrics, sessions, revocations)
        register_chat_views(bundle, desks)
    _register_webhook_watch(bundle)

    async def probe_loop_lag() -> None:  # every worker: each has its own loop
        await watch_loop_lag(metrics.loop_lag_seconds)

    app.task(probe_loop_lag)
    return bundle


def _register_webhook_watch(bundle: Deskstream) -> None:
    """Every worker judges its own view (``app.webhook_watch``) a few times per quiet period."""
    watch = bundle.watch
    if not watch.enabled:
        return
    platforms = {cid: str(c.platform) for cid, c in bundle.settings.connectors.items()}

    async def check_webhooks() -> None:
        report(watch, bundle.metrics, platforms)

    # A timer runs on every worker (not only the leader): each judges what it wrote.
    bundle.app.timer(max(1.0, min(30.0, watch.quiet_seconds / 5)))(check_webhooks)


def _register_sync(bundle: Deskstream, servers: str, rules: SyncConfig) -> None:
    """The sync stage and the sinks: only with a rules file (validated at start-up)."""
    settings, app, channels = bundle.settings, bundle.app, bundle.channels
    planner = SyncPlanner(rules)
    if settings.sink_dry_run:
        log.warning(
            "DESKSTREAM_SINK_DRY_RUN is on: the sinks answer every command as written and "
            "call no platform (benchmarks only); unset it for a worker that syncs"
        )
    profiles = ProfileCache(servers, channels.entities.get_topic_name(), settings.partitions)
    links = declare_links_table(app, settings)
    configured: set[str] = {c.platform for c in settings.connectors.values()}
    runners = {
        platform: SinkRunner(settings, platform, bundle.metrics, bundle.watch)
        for platform in configured & sink_platforms()
    }

    def directory_for(platform: str, connector_id: str) -> AgentDirectory | None:
        # The sink's own directory: one cache per connector and worker, whoever asks.
        runner = runners.get(platform)
        return runner.agents(connector_id) if runner is not None else None

    owners = OwnerEmails(planner.config, directory_for)
    register_sync(
        app,
        channels,
        links,
        planner,
        profiles,
        bundle.metrics,
        owners,
        bundle.waiting,
        bundle.revocations,
    )
    register_timers(app, channels, bundle.metrics, bundle.revocations)
    app.task(profiles.run)
    # Dead letters come from the sinks: measured where there are sinks.
    app.task(DlqDepth(settings, servers, bundle.metrics.dlq_depth).run)
    register_sinks(app, channels, settings, bundle.metrics, runners, bundle.revocations)
