"""OAuth against the sandbox's token endpoint: both flows, refresh ahead of expiry, one token
request for many concurrent callers, and failures that are counted and say what to check."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from connectors.salesforce.auth import (
    JwtBearerTokenSource,
    RefreshTokenSource,
    TokenRefreshError,
    org_id_from_identity,
    token_source_for,
)
from connectors.salesforce.settings import SalesforceSettings
from schemas.errors import ConfigurationError
from tests.connectors.salesforce.conftest import Connector, ConnectorFactory
from tests.sandboxes.salesforce.conftest import API, SalesforceEnv, StartSandbox


async def _works(env: SalesforceEnv, token: str) -> bool:
    async with httpx.AsyncClient(base_url=env.url) as http:
        response = await http.get(
            f"{API}/sobjects/Case/describe", headers={"Authorization": f"Bearer {token}"}
        )
    return response.status_code == 200


@pytest.mark.parametrize("flow", ["jwt_bearer", "refresh_token"])
async def test_each_flow_issues_a_working_session(
    env: SalesforceEnv, connector: Connector, flow: str
) -> None:
    settings = connector.settings(flow)
    async with httpx.AsyncClient() as http:
        source = token_source_for(settings, http, failures=connector.failures, now=connector.now)
        session = await source.session()

    expected = JwtBearerTokenSource if flow == "jwt_bearer" else RefreshTokenSource
    assert isinstance(source, expected)
    assert session.instance_url == env.url
    assert session.org_id == env.org_id
    assert session.access_token in env.sandbox.org.oauth.sessions
    assert await _works(env, session.access_token)


async def test_token_is_refreshed_ahead_of_its_expiry(
    start_sandbox: StartSandbox, connector_for: ConnectorFactory
) -> None:
    async with start_sandbox(session_timeout_s=3600.0) as env:
        connector = connector_for(env)
        settings = connector.settings(session_timeout_seconds=3600.0, refresh_margin_seconds=300.0)
        async with httpx.AsyncClient() as http:
            source = token_source_for(
                settings, http, failures=connector.failures, now=connector.now
            )
            first = await source.session()
            env.clock.advance(3299)
            still = await source.session()
            env.clock.advance(2)  # 5 minutes before the session would time out
            renewed = await source.session()

        assert still == first
        assert renewed.access_token != first.access_token
        # Ahead of expiry: the old token still works when the new one is fetched.
        assert await _works(env, first.access_token)
        assert await _works(env, renewed.access_token)


async def test_concurrent_callers_share_one_token_request(connector: Connector) -> None:
    settings = connector.settings("refresh_token")
    before = connector.token_requests()
    async with httpx.AsyncClient() as http:
        source = token_source_for(settings, http, failures=connector.failures, now=connector.now)
        sessions = await asyncio.gather(*(source.session() for _ in range(50)))
        assert connector.token_requests() == before + 1
        assert len({s.access_token for s in sessions}) == 1

        await source.invalidate(sessions[0])
        renewed = await asyncio.gather(*(source.session() for _ in range(50)))

    assert connector.token_requests() == before + 2
    assert len({s.access_token for s in renewed}) == 1
    assert renewed[0].access_token != sessions[0].access_token


async def test_invalidating_an_old_session_keeps_the_new_one(connector: Connector) -> None:
    async with httpx.AsyncClient() as http:
        source = token_source_for(
            connector.settings(), http, failures=connector.failures, now=connector.now
        )
        old = await source.session()
        await source.invalidate(old)
        new = await source.session()
        await source.invalidate(old)  # a late 401 of a call made with the old token

        assert await source.session() == new


async def test_failed_refresh_is_one_error_for_every_waiter_and_counted(
    env: SalesforceEnv, connector: Connector
) -> None:
    connector.refresh_file.write_text("5Aep861RevokedRefreshToken")
    settings = connector.settings("refresh_token")
    before = connector.token_requests()
    async with httpx.AsyncClient() as http:
        source = token_source_for(settings, http, failures=connector.failures, now=connector.now)
        outcomes = await asyncio.gather(
            *(source.session() for _ in range(10)), return_exceptions=True
        )

    assert all(isinstance(o, TokenRefreshError) for o in outcomes)
    assert len({str(o) for o in outcomes}) == 1
    message = str(outcomes[0])
    assert "invalid_grant" in message
    assert "refresh_token_file" in message
    assert "Revoked" not in message
    assert connector.failed("refresh_token", "refused") == 1
    assert connector.token_requests() == before


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"username": "someone@else.test"}, "pre-authorized"),
        ({"client_id": "3MVG9unknown"}, "consumer key"),
        ({"audience": "https://example.my.site.com"}, "audience"),
    ],
    ids=["user-not-approved", "unknown-consumer", "wrong-audience"],
)
async def test_refused_jwt_says_what_to_check(
    connector: Connector, overrides: dict[str, str], expected: str
) -> None:
    async with httpx.AsyncClient() as http:
        source = token_source_for(
            connector.settings(**overrides), http, failures=connector.failures, now=connector.now
        )
        with pytest.raises(TokenRefreshError, match=expected):
            await source.session()

    assert connector.failed("jwt_bearer", "refused") == 1


async def test_wrong_consumer_secret_fails_the_refresh(connector: Connector) -> None:
    connector.secret_file.write_text("not-the-secret")
    async with httpx.AsyncClient() as http:
        source = token_source_for(
            connector.settings("refresh_token"),
            http,
            failures=connector.failures,
            now=connector.now,
        )
        with pytest.raises(TokenRefreshError, match="client_secret") as raised:
            await source.session()

    assert "not-the-secret" not in str(raised.value)
    assert connector.failed("refresh_token", "refused") == 1


async def test_a_key_that_is_not_rsa_pem_is_a_configuration_error(connector: Connector) -> None:
    connector.key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    async with httpx.AsyncClient() as http:
        source = token_source_for(
            connector.settings(), http, failures=connector.failures, now=connector.now
        )
        with pytest.raises(ConfigurationError, match="private_key_file"):
            await source.session()

    assert connector.failed("jwt_bearer", "misconfigured") == 1


async def test_an_unreachable_token_endpoint_is_retriable_and_counted(
    connector: Connector,
) -> None:
    settings = connector.settings(login_url="http://127.0.0.1:9")  # discard port: refused
    async with httpx.AsyncClient() as http:
        source = token_source_for(settings, http, failures=connector.failures, now=connector.now)
        with pytest.raises(Exception, match="will retry") as raised:
            await source.session()

    assert type(raised.value).__name__ == "RetriableAPIError"
    assert connector.failed("jwt_bearer", "unavailable") == 1


def test_org_id_comes_from_the_identity_url() -> None:
    url = "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000XYZ12AAA"
    assert org_id_from_identity(url) == "00D5g000004ABCDEAA"
    with pytest.raises(ValueError, match="identity URL"):
        org_id_from_identity("https://login.salesforce.com/services/oauth2/userinfo")


def test_settings_need_exactly_one_flow(connector: Connector) -> None:
    with pytest.raises(ValueError, match="exactly one OAuth flow"):
        SalesforceSettings(client_id="3MVG9x")
    with pytest.raises(ValueError, match="exactly one OAuth flow"):
        connector.settings(refresh_token="also-a-refresh-token")
    with pytest.raises(ValueError, match="username"):
        SalesforceSettings(client_id="3MVG9x", private_key_file=connector.key_file)


def test_settings_of_a_connector_come_from_its_prefix(
    monkeypatch: pytest.MonkeyPatch, connector: Connector
) -> None:
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__crm__CLIENT_ID", "3MVG9crm")
    monkeypatch.setenv(
        "DESKSTREAM_CONNECTORS__crm__REFRESH_TOKEN_FILE", str(connector.refresh_file)
    )
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__crm__DAILY_RESERVE", "250")

    settings = SalesforceSettings.for_connector("crm")

    assert (settings.client_id, settings.flow, settings.daily_reserve) == (
        "3MVG9crm",
        "refresh_token",
        250,
    )
    assert settings.refresh() is not None
    monkeypatch.setenv("DESKSTREAM_CONNECTORS__crm__DAILY_RESERVE", "-1")
    with pytest.raises(ConfigurationError, match="DESKSTREAM_CONNECTORS__crm__") as raised:
        SalesforceSettings.for_connector("crm")
    assert connector.env.config.refresh_token not in str(raised.value)
