"""Typed, secret-aware settings, read once from the environment (prefix ``DESKSTREAM_``).

Nested values use ``__``: ``DESKSTREAM_CONNECTORS__support__PLATFORM=zendesk``. A connector's
secret comes from ``..._SECRET`` or, better in production, from a file named by
``..._SECRET_FILE`` (a mounted Kubernetes/Docker secret). ``KAFKA_BOOTSTRAP_SERVERS`` without
prefix is honoured too, because every Kafka tool and container image speaks it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigurationError

__all__ = ["ConnectorSettings", "Platform", "Settings", "get_settings", "load_settings"]

Platform = Literal["generic", "zendesk", "zendesk_conversations", "intercom", "salesforce"]


def _read_secret(value: SecretStr | None, path: Path | None, what: str) -> SecretStr | None:
    if path is None:
        return value
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the connector {what} file {path}: {exc.strerror}; "
            f"mount the file or point the connector's {what}_file at it"
        ) from exc


#: path → ((mtime_ns, size, inode), secrets): a file is read again only once it changed
_SECRET_FILES: dict[Path, tuple[tuple[int, int, int], tuple[SecretStr, ...]]] = {}


def _read_secrets(path: Path, what: str) -> tuple[SecretStr, ...]:
    """Every non-empty line of a secret file, newest first, re-read only when the file
    changed (a stat per call, so each webhook sees a rotation without a restart)."""
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = _SECRET_FILES.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(
            f"cannot read the connector {what} file {path}: {problem}; "
            f"mount the file or point the connector's {what}_file at it"
        ) from None
    secrets = tuple(SecretStr(line.strip()) for line in lines if line.strip())
    _SECRET_FILES[path] = (stamp, secrets)
    return secrets


class ConnectorSettings(BaseModel):
    """One platform account: webhooks arrive at ``/webhooks/<id>``; API calls use its token.

    Secrets come from the environment or, better in production, from files (mounted
    Kubernetes/Docker secrets); a file is read at use, so a rotation needs no restart.

    Rotating a webhook secret: put the new secret on the first line of ``secret_file`` and
    keep the old one on the next (or in ``previous_secret_file``): both are accepted while the
    platform switches over. Remove the old one afterwards. No restart either way.
    """

    platform: Platform
    #: webhook signing secret (Zendesk signing secret, Intercom client secret, Sunshine API key)
    secret: SecretStr | None = None
    #: one secret per line, newest first; every line is accepted
    secret_file: Path | None = None
    #: the secret being rotated out, still accepted during the grace period
    previous_secret: SecretStr | None = None
    previous_secret_file: Path | None = None
    #: how old a signature's timestamp may be (Zendesk, generic); the platform's default when
    #: unset. Wide on purpose: a late retry must never be refused, and replays are caught by
    #: event-id dedupe and the source-time clock (docs/architecture.md, "Webhook freshness")
    signature_window_seconds: int | None = Field(default=None, ge=60, le=7 * 24 * 3600)
    #: the platform's REST API, e.g. https://acme.zendesk.com or a sandbox URL
    api_base_url: str | None = None
    #: Zendesk: the agent email the API token belongs to
    api_user: str | None = None
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    #: Deskstream's own actor on the platform (Zendesk integration user id, Intercom bot admin
    #: id): changes it made are echoes, never synced back (echo detection, layer one)
    service_account_id: str | None = None
    #: the plan's request budget per minute; the platform's default when unset
    rate_limit_per_minute: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> ConnectorSettings:
        if self.secret is not None and self.secret_file is not None:
            raise ValueError("set either secret or secret_file, not both")
        if self.previous_secret is not None and self.previous_secret_file is not None:
            raise ValueError("set either previous_secret or previous_secret_file, not both")
        if self.api_token is not None and self.api_token_file is not None:
            raise ValueError("set either api_token or api_token_file, not both")
        return self

    def signing_secret(self) -> SecretStr | None:
        """The current webhook secret (the newest, when several are accepted)."""
        secrets = self.signing_secrets()
        return secrets[0] if secrets else None

    def signing_secrets(self) -> tuple[SecretStr, ...]:
        """Every webhook secret accepted now, newest first; files are re-read when they
        change, so a rotation applies to the next delivery. Empty when none is set."""
        current = _read_secrets(self.secret_file, "secret") if self.secret_file else ()
        previous = (
            _read_secrets(self.previous_secret_file, "previous_secret")
            if self.previous_secret_file
            else ()
        )
        given = (self.secret, *current, self.previous_secret, *previous)
        return tuple(secret for secret in given if secret is not None)

    def token(self) -> SecretStr | None:
        """The API token, read from ``api_token_file`` at call time so rotations apply."""
        return _read_secret(self.api_token, self.api_token_file, "api_token")


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
    kafka_version: str = "3.9.2"
    kafka_brokers: int = 1
    kafka_port_base: int = Field(default=19092, ge=1024, le=65534)
    kafka_heap: str = "512m"
    state_dir: Path = Path(".deskstream")

    # Topic layout. Replication defaults to the cluster size, capped at three.
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int | None = Field(default=None, ge=1, le=5)

    # Worker.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    table_store: str = "memory://"
    table_standby_replicas: int = Field(default=1, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Webhook ingest.
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    ingest_ack_timeout_seconds: float = Field(default=5.0, gt=0)
    #: a connector this worker wrote ``webhook_quiet_min_writes`` changes to, the first this
    #: long ago, without a webhook from it since has probably stopped sending (0: never judge)
    webhook_quiet_seconds: float = Field(default=300.0, ge=0)
    webhook_quiet_min_writes: int = Field(default=10, ge=1)

    connectors: dict[str, ConnectorSettings] = Field(default_factory=dict)

    # Sync. Without a rules file the worker ingests and normalises only.
    sync_config: Path | None = None
    #: attempts per command before it is dead-lettered; backoff grows to the cap between them
    #: (12 attempts with a 60 s cap ride out a platform outage of about ten minutes)
    sink_max_attempts: int = Field(default=12, ge=1, le=100)
    sink_max_backoff_seconds: float = Field(default=60.0, gt=0)
    #: a rebalance or a stop lets a command in progress finish this long before cutting it
    #: (its next owner then runs it as possibly executed); keep it under the session timeout
    sink_release_grace_seconds: float = Field(default=15.0, ge=0, le=25)

    @field_validator("kafka_brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        # An int checked here rather than Literal[1, 3]: the environment gives a string,
        # which pydantic does not coerce into a Literal.
        if value not in (1, 3):
            raise ValueError("the local stack runs 1 or 3 brokers")
        return value

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
        """Settings as a dict for logs and ``/health``: secrets stay ``**********``."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; a bad value becomes one readable ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(
            f"invalid Deskstream settings ({problems}); fix the DESKSTREAM_* environment "
            "variables named here and start again"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once at start-up."""
    return load_settings()
