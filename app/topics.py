"""Every Kafka topic Deskstream uses, with explicit partitions, replication and configs.

This module is the one place topics are described. ``deskstream topics create`` creates them,
the Faust app declares its channels from them, and ``/ready`` checks they exist. Broker-side
auto-creation is off everywhere, so a topic that is not listed here does not exist.

Retention: ``raw``, ``commands`` and ``timers`` are working sets (7 days is enough to recover
from a long weekend outage); ``quarantine`` and ``dlq`` need a human, so 30 days; ``events``
and ``audit`` are replayed by other teams for analytics and investigations, so they are kept
(-1 = forever; operators can bound them per cluster). ``entities`` is compacted: the latest
state per key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from app.settings import Settings

__all__ = [
    "ENVELOPE_ALLOWANCE_BYTES",
    "SINK_PLATFORMS",
    "TABLES",
    "TopicSpec",
    "by_logical",
    "changelog_name",
    "changelog_spec",
    "max_message_bytes",
    "producer_max_request_size",
    "topic_specs",
]

DAY_MS = 24 * 60 * 60 * 1000

#: What a record adds to the webhook body it carries: a RawDelivery's ids and kept headers
#: (each cut at 1 KiB by ingest), a QuarantineRecord's reason (cut at 4 KiB). Generous, so a
#: body under the limit always fits: a delivery we accept can always be stored.
ENVELOPE_ALLOWANCE_BYTES = 64 * 1024
#: Kafka's record-batch header and per-record framing around one large record
_BATCH_OVERHEAD_BYTES = 1024


def max_message_bytes(settings: Settings) -> int:
    """The largest serialized value Deskstream writes: the webhook body limit plus the
    record around it. Larger values are refused (413 at ingest, truncated in quarantine)."""
    return settings.webhook_max_body_bytes + ENVELOPE_ALLOWANCE_BYTES


def producer_max_request_size(settings: Settings) -> int:
    """The producer's ``max.request.size``: one largest value, with its key and framing."""
    return max_message_bytes(settings) + _BATCH_OVERHEAD_BYTES


def _message_size(settings: Settings) -> dict[str, str]:
    # The topic (not the broker default, 1 MiB) says what it takes; the same figure as the
    # producer's, so whatever the producer accepts the broker stores.
    return {"max.message.bytes": str(producer_max_request_size(settings))}


#: Faust tables of the worker (``app.tables``); their changelogs are created with the topics
TABLES: tuple[str, ...] = ("links", "recent_events", "chat_sessions")

#: platforms with a sink, hence a ``deskstream.commands.<platform>`` topic
SINK_PLATFORMS: tuple[str, ...] = (
    "zendesk",
    "zendesk_conversations",
    "intercom",
    "salesforce",
    "ai_agent",  # hand-off follow-ups for the AI side (``connectors.ai_agent.sink``)
)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A wanted topic: what ``topics create`` makes and what drift is measured against."""

    logical: str
    name: str
    partitions: int
    replication: int
    configs: dict[str, str] = field(default_factory=dict)
    key: str = ""
    value: str = ""
    #: the Avro message its values are (full name), registered as subject ``<name>-value``;
    #: empty for the topics that hold something else (JSON positions, table changelogs)
    avro: str = ""

    @property
    def subject(self) -> str:
        """The registry subject of its values (TopicNameStrategy)."""
        return f"{self.name}-value"


def _replication(settings: Settings) -> int:
    if settings.replication_factor is not None:
        return settings.replication_factor
    # An existing cluster of unknown size gets 3, the production norm; the local stack
    # replicates over the brokers it has.
    return 3 if settings.kafka_bootstrap_servers else min(3, settings.kafka_brokers)


def _durability(replication: int) -> dict[str, str]:
    # With three replicas, acks=all must mean "two brokers have it": one broker may be lost
    # without losing data or refusing writes.
    return {"min.insync.replicas": str(2 if replication >= 3 else 1)}


def _retention(days: int | None) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(-1 if days is None else days * DAY_MS)}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics of DESIGN.md for these settings, in pipeline order."""
    replication = _replication(settings)
    partitions = settings.partitions
    durable = _durability(replication)

    def spec(
        logical: str, configs: dict[str, str], key: str, value: str, *, avro: bool = True
    ) -> TopicSpec:
        return TopicSpec(
            logical=logical,
            name=settings.topic(logical),
            partitions=partitions,
            replication=replication,
            configs={**configs, **durable},
            key=key,
            value=value,
            # "Envelope (latest state)" is an Envelope
            avro=f"deskstream.{value.split()[0]}" if avro else "",
        )

    # Webhook bodies travel on these four: raw and quarantine hold them, events and sync
    # the text normalised from them.
    sized = _message_size(settings)
    specs = [
        spec("raw", _retention(7) | sized, "connector + source entity", "RawDelivery"),
        spec("quarantine", _retention(30) | sized, "connector", "QuarantineRecord"),
        spec("events", _retention(None) | sized, "source entity", "Envelope"),
        # events again, keyed by link: everything about one link meets in one partition;
        # timers come back here when they are due
        spec("sync", _retention(7) | sized, "link", "Envelope or Timer"),
        spec(
            "entities",
            {"cleanup.policy": "compact", "min.compaction.lag.ms": str(60 * 60 * 1000)},
            "link",
            "Envelope (latest state)",
        ),
    ]
    specs += [
        spec(f"commands.{platform}", _retention(7), "target entity", "SyncCommand")
        for platform in SINK_PLATFORMS
    ]
    specs += [
        spec("writes", _retention(7), "link", "WriteResult"),
        # decisions asked for later (a contact create held for a match): each waits here,
        # uncommitted, until it is due (app/agents/timers.py); 7 days outlasts any hold
        spec("timers", _retention(7), "link", "Timer"),
        spec("dlq", _retention(30), "target entity", "DeadLetter"),
        spec("audit", _retention(None), "link", "AuditRecord"),
        # the live chats, one ordered log per chat: hand-offs, the customer's and the agents'
        # messages, session notices; the client stream reads it (app/agents/chat.py)
        spec("chat", _retention(7) | sized, "chat id", "Envelope"),
        # one partition per source slot: the group's assignment is the lease of the sources
        # hashed to it, and the compacted records are their positions (app/agents/sources.py)
        spec(
            "sources", {"cleanup.policy": "compact"}, "source name", "position (JSON)", avro=False
        ),
    ]
    specs += [changelog_spec(settings, changelog_name(settings, table)) for table in TABLES]
    return specs


def changelog_name(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{settings.app_id}-{table}-changelog"


def changelog_spec(settings: Settings, topic_name: str) -> TopicSpec:
    """A Faust table changelog: compacted, co-partitioned with the topics that feed it."""
    replication = _replication(settings)
    return TopicSpec(
        logical=topic_name,
        name=topic_name,
        partitions=settings.partitions,
        replication=replication,
        configs={"cleanup.policy": "compact", **_durability(replication)},
        key="table key",
        value="table value",
    )


def by_logical(specs: Iterable[TopicSpec]) -> dict[str, TopicSpec]:
    return {s.logical: s for s in specs}
