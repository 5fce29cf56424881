"""The connector's tests run against the real Salesforce sandbox (fixtures shared from
``tests/sandboxes/salesforce/conftest.py``), with the connector configured as an operator
would: a key file or a refresh token file, on the sandbox's manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry, Counter

from connectors.salesforce.auth import token_failures_counter, token_source_for
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import DailyLimit
from connectors.salesforce.settings import SalesforceSettings
from tests.sandboxes.salesforce.conftest import (
    SalesforceEnv,
    StartSandbox,
    certificate_pem,
    env,
    rsa_key,
    start_sandbox,
)

__all__ = [
    "Connector",
    "SalesforceEnv",
    "StartSandbox",
    "certificate_pem",
    "env",
    "rsa_key",
    "start_sandbox",
]

FAILURES = "deskstream_salesforce_token_failures_total"


class Connector:
    """Settings files, the failure counter and clients for one sandbox."""

    def __init__(self, env: SalesforceEnv, key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
        self.env = env
        self.registry = CollectorRegistry()
        self.failures: Counter = token_failures_counter(self.registry)
        self.key_file = tmp_path / "salesforce.key"
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.refresh_file = tmp_path / "refresh_token"
        self.refresh_file.write_text(env.config.refresh_token + "\n")
        self.secret_file = tmp_path / "client_secret"
        self.secret_file.write_text(env.config.consumer_secret + "\n")

    def now(self) -> float:
        return self.env.clock.now().timestamp()

    def settings(self, flow: str = "jwt_bearer", **overrides: Any) -> SalesforceSettings:
        values: dict[str, Any] = {
            "login_url": self.env.url,
            "client_id": self.env.config.consumer_key,
        }
        if flow == "jwt_bearer":
            values |= {"username": self.env.config.username, "private_key_file": self.key_file}
        else:
            values |= {
                "refresh_token_file": self.refresh_file,
                "client_secret_file": self.secret_file,
            }
        return SalesforceSettings(**(values | overrides))

    def failed(self, flow: str, reason: str) -> float:
        value = self.registry.get_sample_value(FAILURES, {"flow": flow, "reason": reason})
        return value or 0.0

    def token_requests(self) -> int:
        """Tokens the sandbox issued: one per successful token request."""
        return len(self.env.sandbox.org.oauth.sessions)

    @asynccontextmanager
    async def client(
        self, settings: SalesforceSettings | None = None, *, daily: DailyLimit | None = None
    ) -> AsyncIterator[SalesforceClient]:
        settings = settings or self.settings()
        async with httpx.AsyncClient() as http:
            tokens = token_source_for(settings, http, failures=self.failures, now=self.now)
            yield SalesforceClient(
                http,
                settings=settings,
                tokens=tokens,
                daily=daily,
                monotonic=self.env.clock.monotonic,
            )


@pytest.fixture
def connector(env: SalesforceEnv, rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> Connector:
    return Connector(env, rsa_key, tmp_path)


ConnectorFactory = Callable[[SalesforceEnv], Connector]


@pytest.fixture
def connector_for(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> ConnectorFactory:
    """For tests that start their own sandbox (``start_sandbox(daily_api_limit=...)``)."""
    return lambda started: Connector(started, rsa_key, tmp_path)
