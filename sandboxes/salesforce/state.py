"""The sandbox org: configuration, ids, users, records, sessions, API usage and the event bus."""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandboxes.base.clock import Clock
from sandboxes.base.server import SandboxContext
from sandboxes.base.staff import SHARED
from sandboxes.salesforce.auth import ConnectedApp, OAuthServer, load_public_key
from sandboxes.salesforce.cdc import ChangeEvent, EventBus
from sandboxes.salesforce.ids import IdFactory
from sandboxes.salesforce.query_locators import QueryLocators
from sandboxes.salesforce.store import Change, RecordStore, WriteContext

__all__ = ["ApiUsage", "Org", "SalesforceSandboxConfig"]

logger = logging.getLogger(__name__)


class SalesforceSandboxConfig(BaseModel):
    """Everything about the sandbox org a test or a rehearsal may want to change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Version the sandbox advertises as current; any version in the range is served.
    api_version: str = "59.0"
    min_api_version: float = 31.0
    max_api_version: float = 62.0
    #: Rolling 24 h REST allowance (a Developer Edition org gets 15,000).
    daily_api_limit: int = Field(15_000, ge=1)
    #: Inactivity after which an access token stops working (Salesforce's default: 2 h).
    session_timeout_s: float = Field(7200.0, gt=0)
    cdc_retention_hours: float = Field(72.0, gt=0)
    consumer_key: str = "3MVG9DeskstreamSandbox0ConsumerKey"
    consumer_secret: str = "deskstream-sandbox-consumer-secret"  # noqa: S105 - a sandbox's
    username: str = "integration@deskstream.sandbox"
    refresh_token: str = "5Aep861DeskstreamSandbox0RefreshToken"  # noqa: S105 - published
    #: A second user of the connected app: a person working cases (the console user of
    #: ``actors``). Their writes are not the integration user's, so a sync takes them as a
    #: person's and not as its own echoes.
    agent_username: str = "agent@deskstream.sandbox"
    agent_refresh_token: str = "5Aep861DeskstreamSandbox0AgentRefreshToken"  # noqa: S105
    #: PEM certificates (or public keys) uploaded to the connected app for the JWT flow.
    jwt_certificates: tuple[str, ...] = ()
    #: JWT ``aud`` values accepted besides the sandbox's own URL.
    jwt_audiences: tuple[str, ...] = (
        "https://login.salesforce.com",
        "https://test.salesforce.com",
    )
    #: How far ahead a JWT bearer assertion's ``exp`` may lie (UNVERIFIED, see ``auth``).
    jwt_max_lifetime_s: float = Field(180.0, gt=0)
    #: The connected app's "Require Secret for Web Server Flow": refresh needs client_secret.
    refresh_requires_secret: bool = True
    #: Bayeux long-poll hold time (advice ``timeout``) and how long an idle client survives.
    cometd_timeout_ms: int = Field(110_000, ge=0)
    cometd_max_interval_s: float = Field(40.0, gt=0)
    cometd_max_batch: int = Field(200, ge=1)
    #: Pub/Sub API gRPC listener; port 0 picks a free one.
    pubsub_host: str = "127.0.0.1"
    pubsub_port: int = Field(0, ge=0)
    #: TLS, as Salesforce's endpoint, with a CA the sandbox makes at start-up (``tls``); its
    #: certificate goes to ``pubsub_ca_dir`` (a temporary folder when unset) for clients to
    #: trust. False serves plaintext: only when asked for (the connector then needs
    #: ``pubsub_tls`` false too, and refuses it for anything but this machine).
    pubsub_tls: bool = True
    pubsub_ca_dir: Path | None = None
    #: An empty FetchResponse (keepalive with the latest replay id) after this much quiet.
    pubsub_keepalive_s: float = Field(270.0, gt=0)
    #: Request bodies larger than this are refused (REST JSON with base64 files).
    max_body_bytes: int = Field(52_428_800, ge=1)


class ApiUsage:
    """REST calls in the last 24 hours against the org's daily allowance."""

    window = timedelta(hours=24)

    def __init__(self, clock: Clock, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self._calls: deque[datetime] = deque()

    @property
    def used(self) -> int:
        cutoff = self.clock.now() - self.window
        while self._calls and self._calls[0] <= cutoff:
            self._calls.popleft()
        return len(self._calls)

    def hit(self) -> bool:
        """Count one call; False (not counted) when the allowance is spent."""
        if self.used >= self.limit:
            return False
        self._calls.append(self.clock.now())
        return True

    def header(self) -> str:
        return f"api-usage={self.used}/{self.limit}"

    def reset(self) -> None:
        self._calls.clear()


class Org:
    """One org's complete state. Rebuilt from the same seed on reset, so ids repeat."""

    def __init__(self, config: SalesforceSandboxConfig, context: SandboxContext) -> None:
        self.config = config
        self.context = context
        self.clock = context.clock
        self.extra_certificates: list[str] = []
        self.build()

    def build(self) -> None:
        config, context = self.config, self.context
        self.ids = IdFactory(context.derive_rng("salesforce:ids"))
        self.org_id = self.ids.new("00D")
        self.user_id = self.ids.new("005")
        # The person's id draws from its own sequence, so the records' ids stay as they were.
        self.agent_user_id = IdFactory(context.derive_rng("salesforce:people")).new("005")
        self.store = RecordStore(self.ids)
        self._seed_people()
        # Locators draw from their own sequence, so queries never shift the records' ids.
        self.query_locators = QueryLocators(
            IdFactory(context.derive_rng("salesforce:query")), self.clock
        )
        self.bus = EventBus(
            clock=self.clock,
            rng=context.derive_rng("salesforce:cdc"),
            retention=timedelta(hours=config.cdc_retention_hours),
        )
        self.oauth = OAuthServer(
            clock=self.clock,
            rng=context.derive_rng("salesforce:tokens"),
            org_id=self.org_id,
            users={config.username: self.user_id, config.agent_username: self.agent_user_id},
            session_timeout=timedelta(seconds=config.session_timeout_s),
            audiences=config.jwt_audiences,
            base_url=lambda: context.base_url,
            jwt_max_lifetime=timedelta(seconds=config.jwt_max_lifetime_s),
        )
        self.app = ConnectedApp(
            config.consumer_key,
            config.consumer_secret,
            authorized_usernames={config.username, config.agent_username},
            require_secret=config.refresh_requires_secret,
        )
        for pem in (*config.jwt_certificates, *self.extra_certificates):
            self.app.public_keys.append(load_public_key(pem))
        self.oauth.add_app(self.app)
        self.oauth.add_refresh_token(
            config.refresh_token, username=config.username, client_id=config.consumer_key
        )
        self.oauth.add_refresh_token(
            config.agent_refresh_token,
            username=config.agent_username,
            client_id=config.consumer_key,
        )
        self.usage = ApiUsage(self.clock, config.daily_api_limit)

    def _seed_people(self) -> None:
        """The org's users and its queue: the integration user, the console person, the
        shared support team (``sandboxes.base.staff``, the same emails as the Zendesk agents
        and Intercom admins) and "Support Queue", which owns Cases nobody picked up. Their ids
        draw from a sequence of their own, so the records' ids stay as they were."""
        config, now = self.config, self.clock.now()
        staff = IdFactory(self.context.derive_rng("salesforce:staff"))
        people = [
            (self.user_id, config.username, "Deskstream", "Integration"),
            (self.agent_user_id, config.agent_username, "Casey", "Console"),
        ]
        self.staff_user_ids: dict[str, str] = {}
        for person in SHARED:
            user_id = staff.new("005")
            self.staff_user_ids[person.email] = user_id
            people.append((user_id, person.email, person.first_name, person.last_name))
        for user_id, email, first, last in people:
            self.store.seed(
                "User",
                user_id,
                {"Username": email, "Email": email, "FirstName": first, "LastName": last,
                 "IsActive": True},
                now,
            )  # fmt: skip
        self.queue_id = staff.new("00G")
        self.store.seed(
            "Group",
            self.queue_id,
            {"Name": "Support Queue", "DeveloperName": "Support_Queue", "Type": "Queue"},
            now,
        )

    def add_certificate(self, pem: str) -> None:
        self.app.public_keys.append(load_public_key(pem))
        self.extra_certificates.append(pem)

    def write_context(self, user_id: str) -> WriteContext:
        return WriteContext(user_id=user_id, now=self.clock.now())

    def publish(self, changes: list[Change], *, origin: str, user_id: str) -> list[ChangeEvent]:
        faults = self.context.faults
        return self.bus.commit(
            changes,
            origin=origin,
            user_id=user_id,
            gap_rate=faults.cdc_gap_rate,
            drop_rate=faults.cdc_drop_rate,
        )

    def credentials(self) -> dict[str, Any]:
        """The published sandbox credentials (a sandbox has no secrets worth hiding)."""
        return {
            "org_id": self.org_id,
            "user_id": self.user_id,
            "username": self.config.username,
            "consumer_key": self.config.consumer_key,
            "consumer_secret": self.config.consumer_secret,
            "refresh_token": self.config.refresh_token,
            "agent_username": self.config.agent_username,
            "agent_refresh_token": self.config.agent_refresh_token,
            "staff_user_ids": dict(self.staff_user_ids),
            "unassigned_queue_id": self.queue_id,
            "jwt_certificates": len(self.app.public_keys),
        }
