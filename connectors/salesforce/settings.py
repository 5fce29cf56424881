"""One Salesforce org's connection settings: where to log in, which OAuth flow, which API
version, how much of the daily API allowance to leave alone.

Read from the environment like every connector's settings, under the connector's own prefix:
``DESKSTREAM_CONNECTORS__<id>__LOGIN_URL``, ``..._CLIENT_ID``, ... ``app.settings.Settings``
reads that prefix into the connector's ``ConnectorSettings``, which validates the
Salesforce names into this model (``ConnectorSettings.platform_settings``; the sink and the
normaliser take it from there with :func:`salesforce_settings`). :meth:`for_connector` reads
one connector's names straight from the environment, for tools that run without ``Settings``.

What the sync needs besides the connection: the org's Case ``Status`` and ``Priority``
picklist values and the canonical value each stands for (``status_map``, ``priority_map``:
an org with its own values maps them here; JSON in the environment), and the custom fields
Deskstream writes (``link_field``, the external id holding the link id, and
``handoff_reason_field``). The integration user's id, whose changes are echoes, is the
shared ``service_account_id``.

Two flows, exactly one configured:

* JWT bearer (server to server, no stored token): ``USERNAME`` and ``PRIVATE_KEY_FILE`` (the
  PEM key whose certificate is uploaded to the connected app);
* refresh token: ``REFRESH_TOKEN_FILE`` (or ``REFRESH_TOKEN``), plus ``CLIENT_SECRET_FILE`` (or
  ``CLIENT_SECRET``) when the connected app requires the secret.

Secret files are read at each token request, so a rotation needs no restart; secrets are
``SecretStr`` and never appear in a message.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.base.settings import (
    ConnectorSettings,
    SourceSettings,
    _read_secret,
    validation_problems,
)
from schemas.errors import ConfigurationError
from schemas.models import CaseStatus, Priority

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_PRIORITY_MAP",
    "DEFAULT_STATUS_MAP",
    "PUBSUB_ENDPOINT",
    "SalesforceSettings",
    "SalesforceSourceSettings",
    "is_loopback",
    "salesforce_settings",
]

#: "Pub/Sub API Endpoint" (Pub/Sub API Developer Guide): one endpoint for every org, over TLS
PUBSUB_ENDPOINT = "api.pubsub.salesforce.com:7443"

#: The newest version the sandbox serves (Winter '25); a real org serves it too.
DEFAULT_API_VERSION = "62.0"

Flow = Literal["jwt_bearer", "refresh_token"]

#: the standard Case Status picklist ("Case", Salesforce Object Reference) and what each means
DEFAULT_STATUS_MAP: dict[str, CaseStatus] = {
    "New": CaseStatus.NEW,
    "Working": CaseStatus.OPEN,
    "Escalated": CaseStatus.ON_HOLD,
    "Closed": CaseStatus.CLOSED,
}
#: the standard Case Priority picklist
DEFAULT_PRIORITY_MAP: dict[str, Priority] = {
    "High": Priority.HIGH,
    "Medium": Priority.NORMAL,
    "Low": Priority.LOW,
}


def is_loopback(target: str) -> bool:
    """Is ``host:port`` (``[v6]:port``) on this machine?"""
    host = target.rsplit(":", 1)[0].strip("[]") if ":" in target else target
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _json_object(value: Any) -> Any:
    """A map given as JSON text (the environment's only way to spell one)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(
                'not a JSON object; write it as {"<Salesforce value>": "<canonical value>"}'
            ) from None
    return value


class SalesforceSourceSettings(SourceSettings):
    """A Salesforce pull feed's own settings, beside the shared ones
    (``DESKSTREAM_CONNECTORS__<id>__SOURCES__<kind>__<NAME>``; ``connectors.salesforce.sources``
    names the kinds and which of these each reads)."""

    #: CDC: the Pub/Sub API (gRPC) or the Streaming API (CometD)
    transport: Literal["pubsub", "cometd"] = "pubsub"
    #: CDC: the channel; the kind's own (``/data/CaseChangeEvent``, ...) when unset
    channel: str | None = Field(default=None, pattern=r"^/data/\w+$")
    #: CDC: events delivered and not yet stored (Pub/Sub grants at most 100 a request)
    max_in_flight: int = Field(default=100, ge=1, le=100)
    #: comments: how far back each poll re-reads, for commits that land late
    overlap_seconds: float = Field(default=300.0, ge=1, le=24 * 3600)
    #: reconcile: re-read what was modified this long before each pass
    window_seconds: float = Field(default=3600.0, ge=60, le=30 * 24 * 3600)
    #: reconcile: records whose fields it remembers (their values hashed, in the position),
    #: most recently modified first; a change of a record it forgot is sent as a plain copy
    memory_records: int = Field(default=2000, ge=0, le=20_000)


class SalesforceSettings(BaseModel):
    # A plain model, not BaseSettings: it is validated from ConnectorSettings' values, and a
    # BaseSettings would also read the environment of another connector's prefix.
    model_config = ConfigDict(extra="ignore", frozen=True)

    #: the OAuth server: https://login.salesforce.com, https://test.salesforce.com (sandbox
    #: orgs), a My Domain URL, or the Deskstream sandbox's URL
    login_url: str = "https://login.salesforce.com"
    #: the JWT's ``aud``; the login URL when unset (a My Domain login still names
    #: login/test.salesforce.com here, "OAuth 2.0 JWT Bearer Flow for Server-to-Server
    #: Integration")
    audience: str | None = None
    #: the connected app's consumer key
    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    #: JWT bearer: the integration user's username and the connected app certificate's key
    username: str | None = None
    private_key_file: Path | None = None
    refresh_token: SecretStr | None = None
    refresh_token_file: Path | None = None
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^\d{2,3}\.0$")
    #: the connected app's (or org's) session timeout: Salesforce's token answer carries no
    #: expiry, so the token is treated as valid this long after it was issued (2 h: the default)
    session_timeout_seconds: float = Field(default=7200.0, gt=60)
    #: fetch a new token this long before the session timeout, so no call meets an expiry
    refresh_margin_seconds: float = Field(default=300.0, ge=0)
    #: daily API calls left for the org's other users: below it, our calls pause, never fail
    daily_reserve: int = Field(default=1000, ge=0)
    #: while paused, read ``/limits`` this often to resume early (each read is one API call)
    daily_probe_seconds: float = Field(default=900.0, gt=0)
    #: ``Sforce-Call-Options: client=<this>`` on every write: the change events our writes
    #: cause carry it in ``changeOrigin``, which is how they are recognised as echoes
    call_options_client: str = Field(default="deskstream", pattern=r"^[A-Za-z0-9_.\-/]+$")
    #: requests per minute this worker allows itself (Salesforce has no per-minute limit;
    #: this smooths bursts and is shared between workers by partition)
    rate_limit_per_minute: int = Field(default=6000, ge=1)
    #: Case Status picklist value → canonical status, in the order the sink prefers when
    #: several values stand for one canonical status (the first one is written)
    status_map: dict[str, CaseStatus] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    #: Case Priority picklist value → canonical priority (the first one is written)
    priority_map: dict[str, Priority] = Field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    #: the external id text field on Case and Contact that holds Deskstream's link id
    link_field: str = Field(default="Deskstream_Link_Id__c", pattern=r"^\w+__c$")
    #: the Case text field holding the AI agent's hand-off reason (canonical
    #: ``custom_fields.ai_handoff_reason``)
    handoff_reason_field: str = Field(default="AI_Handoff_Reason__c", pattern=r"^\w+__c$")
    #: who owns a Case nobody owns (a queue, ``00G...``): a Case's OwnerId cannot be empty,
    #: so an unassign elsewhere gives the Case to this queue; unset, an unassign is left out
    #: of the write (audited)
    unassigned_owner_id: str | None = Field(default=None, pattern=r"^00G\w{12}(\w{3})?$")
    #: the Pub/Sub API's host:port (Salesforce's, or a sandbox's)
    pubsub_endpoint: str = PUBSUB_ENDPOINT
    #: TLS, as Salesforce's endpoint requires; false (plaintext, the access token in clear)
    #: only for a sandbox on this machine, and only when asked for
    pubsub_tls: bool = True
    #: PEM certificates to trust for the endpoint instead of the system's root CAs (a
    #: sandbox's own CA, a TLS-inspecting proxy's); unset for Salesforce's endpoint
    pubsub_ca_file: Path | None = None
    #: the pull feeds by kind, with their Salesforce settings (the same names fill
    #: ``ConnectorSettings.sources``, which the worker uses to start them)
    sources: dict[str, SalesforceSourceSettings] = Field(default_factory=dict)

    @field_validator("status_map", "priority_map", mode="before")
    @classmethod
    def _maps_from_json(cls, value: Any) -> Any:
        return _json_object(value)

    @field_validator("status_map", "priority_map")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("needs at least one picklist value")
        return value

    @model_validator(mode="after")
    def _one_flow(self) -> SalesforceSettings:
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("set either client_secret or client_secret_file, not both")
        if self.refresh_token is not None and self.refresh_token_file is not None:
            raise ValueError("set either refresh_token or refresh_token_file, not both")
        jwt = self.private_key_file is not None
        refresh = self.refresh_token is not None or self.refresh_token_file is not None
        if jwt == refresh:
            raise ValueError(
                "configure exactly one OAuth flow: private_key_file and username (JWT bearer) "
                "or refresh_token_file (refresh token)"
            )
        if jwt and not self.username:
            raise ValueError("the JWT bearer flow needs username (the integration user)")
        self._pubsub_transport()
        return self

    def _pubsub_transport(self) -> None:
        if self.pubsub_tls:
            return
        if self.pubsub_ca_file is not None:
            raise ValueError(
                "pubsub_ca_file is for TLS and pubsub_tls is false: set one or the other"
            )
        if not is_loopback(self.pubsub_endpoint):
            raise ValueError(
                f"pubsub_tls false would send the Salesforce access token unencrypted to "
                f"{self.pubsub_endpoint}: plaintext is only for a sandbox on this machine "
                "(127.0.0.1, localhost); Salesforce's endpoint is TLS only, unset pubsub_tls"
            )

    @classmethod
    def for_connector(cls, connector_id: str) -> SalesforceSettings:
        """The settings of connector ``connector_id`` from ``DESKSTREAM_CONNECTORS__<id>__*``;
        a bad or missing value is one ConfigurationError naming the variables."""
        prefix = f"DESKSTREAM_CONNECTORS__{connector_id}__".lower()
        # Names are case-insensitive, as app.settings reads them.
        values = {
            name[len(prefix) :].lower(): value
            for name, value in os.environ.items()
            if name.lower().startswith(prefix) and "__" not in name[len(prefix) :]
        }
        prefix = f"DESKSTREAM_CONNECTORS__{connector_id}__"
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(
                f"invalid Salesforce settings for connector {connector_id!r} "
                f"({validation_problems(exc)}); "
                f"set the {prefix}* variables named here and start again"
            ) from None

    @property
    def flow(self) -> Flow:
        return "jwt_bearer" if self.private_key_file is not None else "refresh_token"

    @property
    def token_url(self) -> str:
        return self.login_url.rstrip("/") + "/services/oauth2/token"

    def jwt_audience(self) -> str:
        return (self.audience or self.login_url).rstrip("/")

    def secret(self) -> SecretStr | None:
        """The consumer secret, read from its file now (rotations apply without a restart)."""
        return _read_secret(self.client_secret, self.client_secret_file, "client_secret")

    def refresh(self) -> SecretStr | None:
        return _read_secret(self.refresh_token, self.refresh_token_file, "refresh_token")

    def private_key_pem(self) -> SecretStr:
        key = _read_secret(None, self.private_key_file, "private_key")
        if key is None:
            raise ConfigurationError(
                "the Salesforce connector has no private_key_file; set "
                "DESKSTREAM_CONNECTORS__<id>__PRIVATE_KEY_FILE for the JWT bearer flow"
            )
        return key


def salesforce_settings(connector_id: str, settings: ConnectorSettings) -> SalesforceSettings:
    """The Salesforce part of a connector's settings (validated with them at start-up)."""
    found = settings.platform_settings
    if not isinstance(found, SalesforceSettings):
        raise ConfigurationError(
            f"connector {connector_id!r} has no Salesforce settings (platform "
            f"{settings.platform!r}); set DESKSTREAM_CONNECTORS__{connector_id}__PLATFORM="
            "salesforce and its CLIENT_ID and OAuth flow"
        )
    return found
