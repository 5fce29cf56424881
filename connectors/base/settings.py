"""One platform account's settings: what a connector needs (its webhook secrets, API token and
base URL, service account, rate budget). ``app.settings.Settings`` holds one per connector id;
it lives here, below ``app``, because connectors read it.

Secrets come from the environment or from files (mounted Kubernetes/Docker secrets) read at
use, so a rotation needs no restart.

A platform with settings of its own (Salesforce: the OAuth flow, the API version, its
picklists) declares them in its own model, listed in ``_PLATFORM_SETTINGS`` and imported by
name when a connector of that platform is validated (``connectors.base`` never imports a
platform). The same ``DESKSTREAM_CONNECTORS__<id>__*`` names fill both: the shared fields
here, the platform's in ``platform_settings``, validated at start-up like the rest.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, SerializeAsAny, ValidationError, model_validator

from schemas.errors import ConfigurationError

__all__ = ["ConnectorSettings", "Mode", "Platform", "SourceSettings", "validation_problems"]

Platform = Literal[
    "generic", "zendesk", "zendesk_conversations", "intercom", "salesforce", "ai_agent"
]
#: how changes reach Deskstream from a platform: pushed, pulled by the polling sources, or both
Mode = Literal["webhooks", "polling", "both"]

#: platform → its own settings model ("module:Class"), validated from the connector's values
_PLATFORM_SETTINGS: dict[str, str] = {
    "salesforce": "connectors.salesforce.settings:SalesforceSettings",
    "zendesk_conversations": "connectors.zendesk_conversations.settings:ConversationsSettings",
}


def validation_problems(exc: ValidationError) -> str:
    """``field: problem; ...`` for a one-line ConfigurationError (values are never shown)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )


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


class SourceSettings(BaseModel):
    """One pull-based feed of a connector (``connectors.base.source``), e.g.
    ``DESKSTREAM_CONNECTORS__support__SOURCES__tickets__POLL_SECONDS=30``."""

    enabled: bool = True
    #: how long a polling source waits once it has read everything available
    poll_seconds: float = Field(default=60.0, gt=0, le=3600)
    #: first run only (no stored position): how far back a polling source starts
    start_lookback_seconds: int = Field(default=3600, ge=0, le=30 * 24 * 3600)
    #: records per request (the platform's maximum when larger)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    #: the feed's own request budget per minute; the platform's documented limit when unset
    requests_per_minute: int | None = Field(default=None, ge=1)
    #: a feed reading the account's general API (a search, a reconciliation): the share of
    #: the connector's ``rate_limit_per_minute`` it may spend at most, and then only while
    #: the sinks leave room (``connectors.base.ratelimit.YieldingBudget``)
    budget_share: float = Field(default=0.2, gt=0, le=1)
    #: how far each poll reaches back behind the previous one, for a platform whose search
    #: shows changes late (Intercom: "a few minutes"); the platform's default when unset
    overlap_seconds: float | None = Field(default=None, ge=0, le=24 * 3600)
    #: a reconciliation: re-read what was modified this long before each pass
    window_seconds: float = Field(default=3600.0, ge=60, le=30 * 24 * 3600)


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
    #: how long an agent's id ⇄ email answer is kept (owner ⇄ assignee sync,
    #: ``connectors.base.directory``); a "no such agent" answer is kept at most 5 minutes
    agent_directory_ttl_seconds: float = Field(default=3600.0, ge=0, le=24 * 3600)
    #: pull-based feeds by kind (``tickets`` for Zendesk's incremental ticket export), each
    #: run by exactly one worker of the cluster (``app.agents.sources``)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    #: ``webhooks`` only; ``polling`` only (a workspace that cannot reach our endpoint: the
    #: webhook URL answers 404 for it); ``both`` (polls catch what webhooks lost, and dedupe
    #: keeps one of each change). ``polling`` and ``both`` run the platform's polling sources
    #: (``connectors.base.registry.POLLING_KINDS``) with their defaults unless ``sources``
    #: says otherwise. Unset: exactly the feeds ``sources`` enables (read as ``both`` when
    #: one of them polls, else ``webhooks``)
    mode: Mode | None = None
    #: the platform's own settings model (see ``_PLATFORM_SETTINGS``), None for the others
    platform_settings: SerializeAsAny[BaseModel] | None = None

    @model_validator(mode="before")
    @classmethod
    def _platform_part(cls, data: Any) -> Any:
        """Validate the platform's own names into its model; shared names (such as
        ``rate_limit_per_minute``) go to both."""
        if not isinstance(data, dict) or data.get("platform_settings") is not None:
            return data
        target = _PLATFORM_SETTINGS.get(str(data.get("platform")))
        if target is None:
            return data
        module_name, _, attribute = target.partition(":")
        model: type[BaseModel] = getattr(importlib.import_module(module_name), attribute)
        own = {k: v for k, v in data.items() if k in model.model_fields}
        try:
            validated = model.model_validate(own)
        except ValidationError as exc:
            # A ValueError becomes part of this model's one error, named by the connector.
            raise ValueError(
                f"{data.get('platform')} settings: {validation_problems(exc)}"
            ) from None
        return {
            k: v for k, v in data.items() if k not in model.model_fields or k in cls.model_fields
        } | {"platform_settings": validated}

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
