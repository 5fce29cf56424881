"""sink-<platform>: ``deskstream.commands.<platform>`` → platform API calls → write results,
audit records, and dead letters for what cannot be written.

Per command: the connector's sink (built once per connector) executes it with the one retry
policy (``connectors.base.retry``: backoff with jitter, Retry-After honoured); each worker's
rate budget follows the share of the commands topic's partitions it holds. Errors become
dead letters with the full, secret-free error: fatal 4xx at once, retriable ones once the
attempts are spent. A sink bug dead-letters too (the worker goes on; the error is logged).
A command this worker cannot decode is dead-lettered byte for byte (``app.dead_letters``).

Commands run in per-partition lanes (``app.agents.lanes``), a backfill's commands only while
no live command waits (``sink_backfill_wait_seconds`` at most); a command that may have run
before (read below the partition's end at assignment, or retried after its handler raised)
reaches the sink as ``attempt`` 2, and the sink checks before a write without an idempotency
key. A runner answers a copy of a command it executed from memory (``DONE_REMEMBERED``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP

from app.agents.acks import Revocations, ack_when_delivered
from app.agents.dry_run import dry_run_result
from app.agents.lanes import Lanes
from app.agents.positions import Positions
from app.channels import Channels, inbound
from app.dead_letters import unreadable_headers
from app.metrics import Labelled, Metrics
from app.settings import Settings
from app.webhook_watch import WebhookWatch
from connectors.base.directory import AgentDirectory
from connectors.base.http import redact
from connectors.base.registry import build_sink
from connectors.base.retry import RetryPolicy, call_with_retries
from connectors.base.sink import Sink, SinkResult
from schemas.codec import decode_as, encode
from schemas.errors import APIError, DeskstreamError, FatalAPIError, RetriableAPIError, SchemaError
from schemas.models import AuditRecord, DeadLetter, SyncCommand, WriteResult
from streams.outcomes import failure, success

__all__ = ["PartitionShare", "SinkRunner", "register_sinks"]

log = logging.getLogger(__name__)

Outcome = tuple[WriteResult, AuditRecord, DeadLetter | None]

#: command ids a runner remembers having executed
DONE_REMEMBERED = 10_000


class SinkRunner:
    """Executes commands for one platform; knows nothing of Kafka."""

    def __init__(
        self,
        settings: Settings,
        platform: str,
        metrics: Metrics,
        watch: WebhookWatch | None = None,
    ) -> None:
        self._settings = settings
        self._platform = platform
        self._dry_run = settings.sink_dry_run
        self._metrics = metrics
        # counted on every command: each series labelled once
        self._end_to_end = Labelled(metrics.end_to_end_seconds)
        self._api_calls = Labelled(metrics.api_calls)
        self._writes = Labelled(metrics.sink_writes)
        self._watch = watch
        self._sinks: dict[str, Sink] = {}
        self._policy = RetryPolicy(
            attempts=settings.sink_max_attempts,
            max_s=settings.sink_max_backoff_seconds,
            rate_limited_s=settings.sink_rate_limited_max_seconds,
        )
        #: command id → what executing it gave, for the latest commands this runner wrote: a
        #: copy of one (the sync stage re-sends what an input read again caused) is answered
        #: from here instead of being written again
        self._done: OrderedDict[str, SinkResult] = OrderedDict()

    def sink(self, connector_id: str) -> Sink:
        found = self._sinks.get(connector_id)
        if found is None:
            config = self._settings.connectors.get(connector_id)
            if config is None or config.platform != self._platform:
                raise FatalAPIError(
                    f"no {self._platform} connector {connector_id!r} is configured on this "
                    "worker; configure it on every worker, then `deskstream dlq retry`"
                )
            found = self._sinks[connector_id] = build_sink(connector_id, config)
            if found.agents is not None:  # its lookups count, whoever asks (sink or sync)
                found.agents.on_lookup = self._count_lookup
            self._metrics.budgets.track(self._platform, connector_id, found.budget)
        return found

    def _count_lookup(self, direction: str, outcome: str) -> None:
        self._metrics.agent_lookups.labels(self._platform, direction, outcome).inc()

    def agents(self, connector_id: str) -> AgentDirectory | None:
        """The connector's agent directory: its sink's, so the sync stage and the sink of
        this worker share one cache."""
        return self.sink(connector_id).agents

    async def run(self, command: SyncCommand, *, share: tuple[int, int]) -> Outcome:
        started = time.perf_counter()
        done = self._done.get(command.command_id) if command.attempt > 1 else None
        if done is not None:
            write, record = success(
                command,
                replace(done, written=False, api_calls=0, detail=f"{done.detail} (a copy: done)"),
                latency_ms=0.0,
                now=datetime.now(UTC),
                end_to_end_ms=None,
            )
            return write, record, None
        end_to_end = None
        if command.caused_at is not None:  # webhook received → this write starting
            end_to_end = (datetime.now(UTC) - command.caused_at).total_seconds()
            self._end_to_end(self._platform).observe(end_to_end)
        first_failed: datetime | None = None
        attempts = 0

        async def attempt() -> SinkResult:
            nonlocal attempts, first_failed
            attempts += 1
            try:
                if self._dry_run:
                    return dry_run_result(command)  # everything but the platform call
                return await sink.execute(command)
            except APIError:
                first_failed = first_failed or datetime.now(UTC)
                self._metrics.sink_errors.labels(self._platform).inc()
                raise

        kind, message, status = "sink_bug", "", None
        try:
            sink = self.sink(command.target.connector_id)
            sink.budget.set_share(*share)
            result = await call_with_retries(attempt, self._policy)
        except FatalAPIError as exc:
            kind, message, status = "fatal_api", str(exc), exc.status
        except RetriableAPIError as exc:
            kind, message, status = "retries_exhausted", str(exc), exc.status
        except DeskstreamError as exc:
            kind, message = "configuration", str(exc)
        except Exception as exc:  # a sink bug must not stop the other commands
            log.exception("sink failed platform=%s command=%s", self._platform, command.command_id)
            message = redact(f"{type(exc).__name__}: {exc}")
        else:
            latency = (time.perf_counter() - started) * 1000
            self._done[command.command_id] = result
            while len(self._done) > DONE_REMEMBERED:
                self._done.popitem(last=False)
            self._writes(self._platform, "written" if result.written else "unchanged").inc()
            self._api_calls(self._platform).inc(result.api_calls)
            if result.written and self._watch is not None:
                self._watch.wrote(command.target.connector_id)
            write, record = success(
                command,
                result,
                latency_ms=latency,
                now=datetime.now(UTC),
                end_to_end_ms=None if end_to_end is None else end_to_end * 1000,
            )
            return write, record, None
        self._writes(self._platform, "failed").inc()
        now = datetime.now(UTC)
        return failure(
            command,
            kind=kind,
            message=message,
            status=status,
            attempts=max(attempts, 1),
            first_failed_at=first_failed or now,
            latency_ms=(time.perf_counter() - started) * 1000,
            now=now,
        )


#: how often a sink looks at the consumer's assignment for its share of the rate budget
SHARE_REFRESH_S = 1.0


class PartitionShare:
    """This worker's share of a commands topic's partitions: the rate budget's share.

    A lane runs a command of a partition this worker holds, so the share is never 0. The
    consumer's assignment view is briefly empty during a rebalance: a share of 0 there made
    every call of the command in progress wait a whole rate window (a Zendesk lane seen idle
    for minutes after a CDC takeover); the last share seen stands in until the view is back.
    """

    def __init__(self, topic: str, partitions: int) -> None:
        self._topic = topic
        self._partitions = partitions
        self._held = 1

    def __call__(self, assignment: Iterable[TP]) -> tuple[int, int]:
        owned = sum(1 for tp in assignment if tp.topic == self._topic)
        if owned:
            self._held = owned
        return self._held, self._partitions

    def looking_every(
        self,
        seconds: float,
        assignment: Callable[[], Iterable[TP]],
        clock: Callable[[], float] = time.monotonic,
    ) -> Callable[[], tuple[int, int]]:
        """The share, from ``assignment()`` looked at once every ``seconds`` at most. Faust
        builds the assignment anew on each call (a TP for every partition of every topic the
        worker holds: 1 % of a worker's CPU when asked per command), and it changes only in
        a rebalance, where the last share stands in anyway."""
        looked_at: float | None = None
        share = (self._held, self._partitions)

        def current() -> tuple[int, int]:
            nonlocal looked_at, share
            now = clock()
            if looked_at is None or now - looked_at >= seconds:
                share, looked_at = self(assignment()), now
            return share

        return current


def register_sinks(
    app: faust.App,
    channels: Channels,
    settings: Settings,
    metrics: Metrics,
    runners: dict[str, SinkRunner],
    revocations: Revocations,
) -> list[faust.types.AgentT[Any]]:
    """One sink agent per platform of ``runners`` (``SinkRunner`` per platform, built by the
    caller, who shares their agent directories with the sync stage)."""
    return [
        _register(app, channels, settings, metrics, platform, runner, revocations)
        for platform, runner in sorted(runners.items())
    ]


def _register(
    app: faust.App,
    channels: Channels,
    settings: Settings,
    metrics: Metrics,
    platform: str,
    runner: SinkRunner,
    revocations: Revocations,
) -> faust.types.AgentT[Any]:
    topic = channels.commands[platform]
    topic_name = topic.get_topic_name()
    positions = Positions(app, metrics, f"sink-{platform}", [topic_name])

    partition_share = PartitionShare(topic_name, settings.partitions)
    writes_topic = channels.writes.get_topic_name()
    audit_topic = channels.audit.get_topic_name()

    share = partition_share.looking_every(SHARE_REFRESH_S, lambda: app.consumer.assignment())

    async def dead_letter_unreadable(event: faust.EventT[Any], error: SchemaError) -> None:
        message = event.message
        log.error(
            "sink dead-lettered a command it cannot read platform=%s partition=%s offset=%s "
            "error=%s; once every worker runs the version that wrote it, "
            "`deskstream dlq retry` sends it back",
            platform,
            message.partition,
            message.offset,
            error,
        )
        metrics.sink_writes.labels(platform, "unreadable").inc()
        sent = await app.producer.send(
            channels.dlq.get_topic_name(),
            f"{platform}:unreadable".encode(),
            event.value,
            None,
            None,
            unreadable_headers(message.topic, event.key or b"", str(error)),
        )
        ack_when_delivered(app, event, [sent])

    def read(event: faust.EventT[Any]) -> SyncCommand | SchemaError:
        # Decoded once, as the command is queued: its backfill flag picks the lane and the
        # lane's handler runs it (decoding it twice cost 2 % of a worker's CPU).
        try:
            return decode_as(event.value, SyncCommand)
        except SchemaError as exc:
            return exc

    async def handle(
        event: faust.EventT[Any], read: SyncCommand | SchemaError, again: bool
    ) -> None:
        if isinstance(read, SchemaError):
            await dead_letter_unreadable(event, read)
            return
        command = read
        if again or positions.may_have_run(event):
            # An earlier attempt here, or the partition's previous owner, may have written
            # it: the sink checks before a write without an idempotency key.
            command = command.model_copy(update={"attempt": max(2, command.attempt)})
        write, record, letter = await runner.run(command, share=share())
        key = command.link_id.encode()
        # Straight to the producer: Faust's per-send machinery stays off the hot path.
        send = app.producer.send
        sends: list[Awaitable[Any]] = [
            await send(writes_topic, key, encode(write), None, None, None),
            await send(audit_topic, key, encode(record), None, None, None),
        ]
        if letter is not None:
            log.warning(
                "command dead-lettered platform=%s command=%s kind=%s",
                platform,
                command.command_id,
                letter.error_kind,
            )
            sends.append(
                await channels.dlq.send(key=f"{platform}:{command.link_id}".encode(), value=letter)
            )
        ack_when_delivered(app, event, sends)

    def is_backfill(read: SyncCommand | SchemaError) -> bool:
        # an unreadable command is dead-lettered by ``handle``, as a live command
        return isinstance(read, SyncCommand) and read.backfill

    lanes = Lanes(
        handle,
        lambda: cast(Any, app.consumer),
        read=read,
        on_failure=metrics.sink_lane_failures.labels(platform).inc,
        is_backfill=is_backfill,
        backfill_wait=settings.sink_backfill_wait_seconds,
    )

    grace = settings.sink_release_grace_seconds
    lanes.release_on_revocation(revocations, topic_name, grace)

    @app.agent(inbound(app, topic), name=f"sink-{platform}")
    async def write_to_platform(stream: faust.StreamT[Any]) -> None:
        await lanes.feed(app, stream, positions.received, grace=grace)

    return write_to_platform
