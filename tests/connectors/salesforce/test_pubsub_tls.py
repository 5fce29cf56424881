"""The Pub/Sub transport over TLS, as production's endpoint serves it: the sandbox serves TLS
with a CA of its own (``sandboxes.salesforce.tls``), the connector trusts it through
``pubsub_ca_file``, and a certificate it does not trust is one clear error naming the
endpoint and the setting to change. Plaintext only when asked for, and only on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce.cdc_items import DecodedChange
from connectors.salesforce.cdc_pubsub import PubSubSubscriber
from connectors.salesforce.pubsub_channel import PubSubEndpoint
from connectors.salesforce.settings import SalesforceSettings
from sandboxes.salesforce.tls import issue
from schemas.errors import ConfigurationError
from tests.connectors.salesforce.cdc_harness import Reader
from tests.connectors.salesforce.sandbox_tokens import SandboxTokens
from tests.connectors.salesforce.test_cdc_subscribers import subscribed
from tests.sandboxes.salesforce.conftest import SalesforceEnv, StartSandbox

CONTACTS = "/data/ContactChangeEvent"
PREFIX = "DESKSTREAM_CONNECTORS__sf__"


def endpoint(env: SalesforceEnv, ca_file: Path | None, *, tls: bool = True) -> PubSubEndpoint:
    return PubSubEndpoint(env.sandbox.pubsub_target, tls, ca_file, PREFIX)


async def first_error(env: SalesforceEnv, at: PubSubEndpoint) -> BaseException:
    """What subscribing through ``at`` raises (the subscriber gives up at once)."""
    async with at.channel() as channel:
        subscriber = PubSubSubscriber(channel, SandboxTokens.of(env), endpoint=at)
        reader = Reader(subscriber, CONTACTS, None)
        with pytest.raises(ConfigurationError) as raised:
            await reader.next_batch(wait_s=20)
        await reader.close()
    return raised.value


async def test_events_arrive_decoded_over_tls_with_the_sandbox_ca(env: SalesforceEnv) -> None:
    assert env.sandbox.pubsub_ca_file is not None
    at = endpoint(env, env.sandbox.pubsub_ca_file)
    async with at.channel() as channel:
        reader = Reader(
            PubSubSubscriber(channel, SandboxTokens.of(env), endpoint=at), CONTACTS, None
        )
        await subscribed(env, "pubsub")
        contact_id = await env.create(
            "Contact", {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@example.com"}
        )
        [created] = await reader.changes(1)
        await reader.close()
    assert isinstance(created, DecodedChange)
    assert (created.header.change_type, created.record.record_id) == ("CREATE", contact_id)
    assert created.record.fields["Email"] == "grace@example.com"


@pytest.mark.parametrize("trust", ["another-ca", "system-roots"])
async def test_a_certificate_not_trusted_is_one_clear_error(
    env: SalesforceEnv, tmp_path: Path, trust: str
) -> None:
    ca_file = None
    if trust == "another-ca":
        ca_file = tmp_path / "other-ca.pem"
        ca_file.write_bytes(issue(["127.0.0.1"]).ca_pem)
    error = str(await first_error(env, endpoint(env, ca_file)))
    target = env.sandbox.pubsub_target
    assert error.startswith(f"TLS handshake with the Salesforce Pub/Sub API at {target} failed")
    assert "not signed by a CA this worker trusts" in error
    assert str(ca_file) in error if ca_file else "the system's root CAs" in error
    assert f"{PREFIX}PUBSUB_CA_FILE" in error  # what to do
    assert env.sandbox.pubsub.streams == 0  # nothing reached the API: no token went out


async def test_tls_to_a_plaintext_port_says_so(start_sandbox: StartSandbox) -> None:
    async with start_sandbox(pubsub_tls=False) as env:  # plaintext, explicitly asked for
        assert env.sandbox.pubsub_ca_file is None
        error = str(await first_error(env, endpoint(env, None)))
    assert "does not answer in TLS" in error
    assert f"{PREFIX}PUBSUB_TLS=false" in error


def settings(**values: Any) -> SalesforceSettings:
    return SalesforceSettings.model_validate(
        {"client_id": "app", "refresh_token": "token", **values}
    )


def test_production_uses_tls_with_the_system_roots() -> None:
    at = PubSubEndpoint.of(settings(), "sf")
    assert (at.target, at.tls, at.ca_file) == ("api.pubsub.salesforce.com:7443", True, None)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        pytest.param(
            {"pubsub_endpoint": "api.pubsub.salesforce.com:7443", "pubsub_tls": False},
            "only for a sandbox on this machine",
            id="plaintext-to-salesforce",
        ),
        pytest.param(
            {"pubsub_endpoint": "10.0.0.5:7011", "pubsub_tls": False},
            "access token unencrypted",
            id="plaintext-to-another-host",
        ),
        pytest.param(
            {"pubsub_endpoint": "127.0.0.1:7011", "pubsub_tls": False, "pubsub_ca_file": "/ca"},
            "set one or the other",
            id="ca-file-without-tls",
        ),
    ],
)
def test_plaintext_only_for_this_machine_and_only_when_asked(
    values: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        settings(**values)


@pytest.mark.parametrize("host", ["127.0.0.1:7011", "localhost:7011", "[::1]:7011"])
def test_plaintext_to_a_local_sandbox_when_asked(host: str) -> None:
    assert not PubSubEndpoint.of(settings(pubsub_endpoint=host, pubsub_tls=False), "sf").tls


@pytest.mark.parametrize("content", [None, b"not a certificate"], ids=["missing", "not-pem"])
def test_an_unusable_ca_file_is_a_configuration_error(
    tmp_path: Path, content: bytes | None
) -> None:
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    with pytest.raises(ConfigurationError, match=f"{PREFIX}PUBSUB_CA_FILE"):
        PubSubEndpoint("127.0.0.1:1", True, ca_file, PREFIX).channel()
