"""Fixtures: a Salesforce sandbox on ephemeral loopback ports (HTTP and Pub/Sub gRPC) with a
manual clock, a connected app whose certificate holds a key generated here, and an httpx
client carrying an access token from the refresh token flow."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandboxes.base import ManualClock, SandboxContext, load_profile, run_sandboxes
from sandboxes.salesforce import SalesforceSandbox, SalesforceSandboxConfig

API = "/services/data/v59.0"


def make_certificate(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate, as uploaded to a connected app for the JWT bearer flow."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deskstream-test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def certificate_pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return make_certificate(rsa_key)


@dataclass
class SalesforceEnv:
    sandbox: SalesforceSandbox
    url: str
    clock: ManualClock
    http: httpx.AsyncClient
    token: str

    @property
    def config(self) -> SalesforceSandboxConfig:
        return self.sandbox.config

    @property
    def org_id(self) -> str:
        return self.sandbox.org.org_id

    async def create(self, sobject: str, body: dict[str, Any], **headers: str) -> str:
        response = await self.http.post(f"{API}/sobjects/{sobject}", json=body, headers=headers)
        assert response.status_code == 201, response.text
        record_id = response.json()["id"]
        assert isinstance(record_id, str)
        return record_id

    async def create_many(self, sobject: str, bodies: list[dict[str, Any]]) -> list[str]:
        """Inserts through sObject Collections, 200 a call (one transaction, one timestamp)."""
        ids: list[str] = []
        for start in range(0, len(bodies), 200):
            chunk = [{"attributes": {"type": sobject}, **b} for b in bodies[start : start + 200]]
            response = await self.http.post(f"{API}/composite/sobjects", json={"records": chunk})
            assert response.status_code == 200, response.text
            results = response.json()
            assert all(r["success"] for r in results), results
            ids += [r["id"] for r in results]
        return ids

    async def update(
        self, sobject: str, record_id: str, body: dict[str, Any], **headers: str
    ) -> None:
        response = await self.http.patch(
            f"{API}/sobjects/{sobject}/{record_id}", json=body, headers=headers
        )
        assert response.status_code == 204, response.text


async def refresh_token_grant(url: str, config: SalesforceSandboxConfig) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": config.refresh_token,
                "client_id": config.consumer_key,
                "client_secret": config.consumer_secret,
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


StartSandbox = Callable[..., AbstractAsyncContextManager[SalesforceEnv]]


@pytest.fixture
def start_sandbox(certificate_pem: str) -> StartSandbox:
    """``async with start_sandbox(daily_api_limit=3, faults="none") as env: ...``"""

    @asynccontextmanager
    async def start(faults: str = "none", **overrides: Any) -> AsyncIterator[SalesforceEnv]:
        settings: dict[str, Any] = {
            "jwt_certificates": (certificate_pem,),
            "cometd_timeout_ms": 1500,
            "pubsub_keepalive_s": 30.0,
        }
        settings.update(overrides)
        clock = ManualClock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
        context = SandboxContext(
            clock=clock, rng=random.Random(7), faults=load_profile(faults), seed=7
        )
        sandbox = SalesforceSandbox(context=context, config=SalesforceSandboxConfig(**settings))
        async with run_sandboxes([sandbox]) as running:
            url = running.url("salesforce")
            grant = await refresh_token_grant(url, sandbox.config)
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {grant['access_token']}"}
            ) as http:
                yield SalesforceEnv(sandbox, url, clock, http, grant["access_token"])

    return start


@pytest.fixture
async def env(start_sandbox: StartSandbox) -> AsyncIterator[SalesforceEnv]:
    async with start_sandbox() as started:
        yield started
