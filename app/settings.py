"""Typed, secret-aware settings, read once from the environment (prefix ``DESKSTREAM_``).

Nested values use ``__``: ``DESKSTREAM_CONNECTORS__support__PLATFORM=zendesk``. A connector's
secret comes from ``..._SECRET`` or, better in production, from a file named by
``..._SECRET_FILE`` (a mounted Kubernetes/Docker secret). ``KAFKA_BOOTSTRAP_SERVERS`` without
prefix is honoured too, because every Kafka tool and container image speaks it; so is
``SCHEMA_REGISTRY_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.chat_clients import ChatSettings
from connectors.base.settings import ConnectorSettings, Platform, validation_problems
from schemas.errors import ConfigurationError
from streams.recent_ids import MAX_IDS_LIMIT

__all__ = ["ConnectorSettings", "Platform", "Settings", "get_settings", "load_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DESKSTREAM_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    app_id: str = "deskstream"
    topic_prefix: str = "deskstream"

    # Kafka. Unset bootstrap servers mean "the local stack this project starts".
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    #: the local stack's Apache Kafka release: the newest 4.x the whole suite passes on. 3.9.2
    #: stays supported and tested for clusters not yet on 4.x (tests/app/test_kafka_versions.py,
    #: README "Kafka versions")
    kafka_version: str = "4.4.0"
    kafka_brokers: int = 1
    kafka_port_base: int = Field(default=19092, ge=1024, le=65534)
    kafka_heap: str = "512m"
    state_dir: Path = Path(".deskstream")

    # Schema registry (Confluent API; app/schema_registry/). Unset: the local stack's registry
    # when Kafka is the local stack, none with an external Kafka; "none": never a registry.
    # Without one, values are written in the Avro single-object encoding (docs/schema-registry.md).
    schema_registry_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DESKSTREAM_SCHEMA_REGISTRY_URL", "SCHEMA_REGISTRY_URL"),
    )
    #: HTTP basic auth for the registry (Confluent Cloud: API key and secret)
    schema_registry_user: str | None = None
    schema_registry_password: SecretStr | None = None
    schema_registry_password_file: Path | None = None
    #: the rule each ``<topic>-value`` subject gets when it has a weaker one (or none)
    schema_registry_compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"
    ] = "FULL_TRANSITIVE"
    schema_registry_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The local stack's registry: Apicurio Registry from Maven Central (needs Java 21+).
    registry_version: str = "3.3.3"
    registry_heap: str = "384m"

    # Topic layout. Replication defaults to the cluster size, capped at three.
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int | None = Field(default=None, ge=1, le=5)

    # Worker.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    table_store: str = "memory://"
    table_standby_replicas: int = Field(default=1, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: a worker silent this long leaves the group: its partitions, and the leases of its
    #: sources, go to the others (heartbeats every third of it, at most 3 s). A killed
    #: worker's sources and partitions move after about this plus one heartbeat. 10 s suits
    #: workers on the brokers' LAN: heartbeats go every 3 s from the worker's event loop (and
    #: go on during a rebalance), so it takes three lost in a row, or a loop stalled 7 s, to
    #: lose a live worker. Kafka's own 45 s default is for clients across a WAN or with long
    #: GC pauses: raise it there. The brokers' group.min.session.timeout.ms (6 s) is the floor.
    kafka_session_timeout_seconds: float = Field(default=10.0, ge=6, le=300)

    # Webhook ingest.
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    ingest_ack_timeout_seconds: float = Field(default=5.0, gt=0)
    #: a connector this worker wrote ``webhook_quiet_min_writes`` changes to, the first this
    #: long ago, without a webhook from it since has probably stopped sending (0: never judge)
    webhook_quiet_seconds: float = Field(default=300.0, ge=0)
    webhook_quiet_min_writes: int = Field(default=10, ge=1)

    # Normalize drops an event id it already sent for the same raw key (streams.recent_ids):
    # for this long after its first delivery (the raw topic's retention, so a replay of the
    # whole raw topic is caught; 0: no dedupe before the canonical topic), at most
    # ``event_dedupe_max_ids`` ids per key (12 bytes each; 341 fit the 4 KB bound).
    event_dedupe_window_seconds: int = Field(default=7 * 24 * 60 * 60, ge=0)
    event_dedupe_max_ids: int = Field(default=256, ge=1, le=MAX_IDS_LIMIT)

    connectors: dict[str, ConnectorSettings] = Field(default_factory=dict)

    # Sync. Without a rules file the worker ingests and normalises only.
    sync_config: Path | None = None
    #: attempts per command before it is dead-lettered; backoff grows to the cap between them
    #: (12 attempts with a 60 s cap ride out a platform outage of about ten minutes)
    sink_max_attempts: int = Field(default=12, ge=1, le=100)
    sink_max_backoff_seconds: float = Field(default=60.0, gt=0)
    #: a 429 spends no attempt (the platform ran nothing and says when to come back): a
    #: command keeps waiting out Retry-Afters this long before it is dead-lettered (a Zendesk
    #: ticket's own limit, 30 updates per 10 minutes, can hold one for ten)
    sink_rate_limited_max_seconds: float = Field(default=900.0, gt=0)
    #: a rebalance or a stop lets a command in progress finish this long before cutting it
    #: (its next owner then runs it as possibly executed; one waiting between two attempts
    #: is cut at once). The whole group waits for it: heartbeats go on meanwhile, so the
    #: session timeout does not bound it, Faust's 60 s rebalance timeout does
    sink_release_grace_seconds: float = Field(default=15.0, ge=0, le=25)
    #: a backfill's command waits at most this long for the sink's live commands to be done
    #: (``app.agents.lanes``); 0 runs it at once, as a live one
    sink_backfill_wait_seconds: float = Field(default=30.0, ge=0)

    #: benchmarks only (``bench.sync_pipeline --dry-run``): the sinks do everything but call
    #: the platforms and answer every command as written (``app.agents.dry_run``); nothing
    #: reaches a platform, so never in production
    sink_dry_run: bool = False

    #: a failing source waits from 1 s, doubling, up to this long before it starts again
    source_max_backoff_seconds: float = Field(default=60.0, ge=1)

    #: the live chat bridge's client side: workspaces per AI client, stream lookback
    chat: ChatSettings = Field(default_factory=ChatSettings)

    @field_validator("kafka_brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        # An int checked here rather than Literal[1, 3]: the environment gives a string,
        # which pydantic does not coerce into a Literal.
        if value not in (1, 3):
            raise ValueError("the local stack runs 1 or 3 brokers")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> Settings:
        if self.schema_registry_password is not None and self.schema_registry_password_file:
            raise ValueError(
                "set either schema_registry_password or schema_registry_password_file, not both"
            )
        return self

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def topic(self, name: str) -> str:
        """The full topic name for a logical one: ``raw`` → ``deskstream.raw``."""
        return f"{self.topic_prefix}.{name}"

    def masked(self) -> dict[str, Any]:
        """Settings as a dict for logs and ``/health``: secrets stay ``**********``, and a
        registry URL loses its user info (``https://key:secret@host`` is a common spelling)."""
        dumped = self.model_dump(mode="json")
        url = dumped.get("schema_registry_url")
        if url and "@" in url:
            parts = urlsplit(url)
            netloc = f"**********@{parts.netloc.rpartition('@')[2]}"
            dumped["schema_registry_url"] = urlunsplit(parts._replace(netloc=netloc))
        return dumped


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; a bad value becomes one readable ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(
            f"invalid Deskstream settings ({validation_problems(exc)}); fix the DESKSTREAM_* "
            "environment variables named here and start again"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once at start-up."""
    return load_settings()
