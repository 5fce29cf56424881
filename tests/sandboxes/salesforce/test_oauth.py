"""OAuth: the JWT bearer flow (an RS256 assertion signed with a key generated here), the
refresh token flow, Salesforce's error bodies, and session expiry on the sandbox clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.sandboxes.salesforce.conftest import API, SalesforceEnv, make_certificate

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def assertion(env: SalesforceEnv, key: rsa.RSAPrivateKey, **claims: Any) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    body = {
        "iss": env.config.consumer_key,
        "sub": env.config.username,
        "aud": "https://login.salesforce.com",
        "exp": int(env.clock.now().timestamp()) + 180,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, pem, algorithm="RS256")


async def token_request(env: SalesforceEnv, data: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=env.url) as client:
        return await client.post("/services/oauth2/token", data=data)


async def test_jwt_bearer_issues_a_working_token_without_refresh_token(
    env: SalesforceEnv, rsa_key: rsa.RSAPrivateKey
) -> None:
    response = await token_request(
        env, {"grant_type": JWT_BEARER, "assertion": assertion(env, rsa_key)}
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope", "instance_url", "id", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == env.url
    assert body["id"] == f"{env.url}/id/{env.org_id}/{env.sandbox.org.user_id}"
    assert body["access_token"].startswith(env.org_id[:15] + "!")
    async with httpx.AsyncClient(base_url=body["instance_url"]) as client:
        described = await client.get(
            f"{API}/sobjects/Case/describe",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
    assert described.status_code == 200


@pytest.mark.parametrize(
    ("claims", "use_other_key", "error", "description"),
    [
        ({"iss": "3MVG9unknown"}, False, "invalid_client_id", "client identifier invalid"),
        ({}, True, "invalid_grant", "invalid assertion"),
        ({"aud": "https://example.my.site.com"}, False, "invalid_grant", "audience is invalid"),
        ({"exp": 1_000}, False, "invalid_grant", "expired authorization code"),
        (
            {"sub": "someone@else.test"},
            False,
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
    ],
    ids=["unknown-consumer", "signed-by-another-key", "wrong-audience", "expired", "unknown-user"],
)
async def test_jwt_bearer_errors(
    env: SalesforceEnv,
    rsa_key: rsa.RSAPrivateKey,
    claims: dict[str, Any],
    use_other_key: bool,
    error: str,
    description: str,
) -> None:
    key = rsa.generate_private_key(65537, 2048) if use_other_key else rsa_key

    response = await token_request(
        env, {"grant_type": JWT_BEARER, "assertion": assertion(env, key, **claims)}
    )

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


async def test_a_jwt_expiring_more_than_three_minutes_ahead_is_refused(
    env: SalesforceEnv, rsa_key: rsa.RSAPrivateKey
) -> None:
    now = int(env.clock.now().timestamp())
    # UNVERIFIED: the harsher reading of the JWT bearer page's limit on ``exp`` (see auth.py).
    at_the_limit = assertion(env, rsa_key, exp=now + 180)
    beyond = assertion(env, rsa_key, exp=now + 181)
    as_text = assertion(env, rsa_key, exp=str(now + 60))

    ok = await token_request(env, {"grant_type": JWT_BEARER, "assertion": at_the_limit})
    refused = await token_request(env, {"grant_type": JWT_BEARER, "assertion": beyond})
    text = await token_request(env, {"grant_type": JWT_BEARER, "assertion": as_text})

    assert ok.status_code == 200
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "expired authorization code",
    }
    # RFC 7519 makes ``exp`` a NumericDate, but simple-salesforce, whose JWT login works
    # against real orgs, sends it as a string of digits: Salesforce evidently reads those.
    assert text.status_code == 200
    garbage = assertion(env, rsa_key, exp="soon")
    refused_text = await token_request(env, {"grant_type": JWT_BEARER, "assertion": garbage})
    assert refused_text.status_code == 400


async def test_refresh_without_the_client_secret_is_refused(env: SalesforceEnv) -> None:
    # "Understanding the OAuth Refresh Token Process": client_secret is required unless the
    # connected app's "Require Secret for Web Server Flow" is off (it is on by default).
    response = await token_request(
        env,
        {
            "grant_type": "refresh_token",
            "refresh_token": env.config.refresh_token,
            "client_id": env.config.consumer_key,
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client secret required",
    }


async def test_a_certificate_uploaded_later_is_accepted(env: SalesforceEnv) -> None:
    other = rsa.generate_private_key(65537, 2048)
    data = {"grant_type": JWT_BEARER, "assertion": assertion(env, other)}
    assert (await token_request(env, data)).status_code == 400

    async with httpx.AsyncClient(base_url=env.url) as client:
        uploaded = await client.post(
            "/_sandbox/salesforce/certificates", content=make_certificate(other)
        )

    assert uploaded.status_code == 200
    assert (await token_request(env, data)).status_code == 200


async def test_refresh_token_flow_signs_id_and_issued_at(env: SalesforceEnv) -> None:
    config = env.config
    response = await token_request(
        env,
        {
            "grant_type": "refresh_token",
            "refresh_token": config.refresh_token,
            "client_id": config.consumer_key,
            "client_secret": config.consumer_secret,
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert {"access_token", "signature", "instance_url", "id", "token_type", "issued_at"} <= set(
        body
    )
    assert "refresh_token" not in body
    assert body["issued_at"] == str(int(env.clock.now().timestamp() * 1000))
    expected = hmac.new(
        config.consumer_secret.encode(),
        (body["id"] + body["issued_at"]).encode(),
        hashlib.sha256,
    ).digest()
    assert base64.b64decode(body["signature"]) == expected


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"refresh_token": "5Aep861nope"}, "invalid_grant", "expired access/refresh token"),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"client_id": "3MVG9unknown"}, "invalid_client_id", "client identifier invalid"),
        ({"grant_type": "password"}, "unsupported_grant_type", "grant type not supported"),
    ],
    ids=["unknown-refresh-token", "wrong-secret", "unknown-client", "unsupported-grant"],
)
async def test_refresh_token_errors(
    env: SalesforceEnv, overrides: dict[str, str], error: str, description: str
) -> None:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": env.config.refresh_token,
        "client_id": env.config.consumer_key,
        "client_secret": env.config.consumer_secret,
        **overrides,
    }

    response = await token_request(env, data)

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


async def test_an_idle_session_expires_and_answers_401(env: SalesforceEnv) -> None:
    timeout = env.config.session_timeout_s
    env.clock.advance(timeout - 1)
    assert (await env.http.get(f"{API}/limits")).status_code == 200, "use keeps it alive"
    env.clock.advance(timeout - 1)
    assert (await env.http.get(f"{API}/limits")).status_code == 200

    env.clock.advance(timeout)
    response = await env.http.get(f"{API}/limits")

    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


async def test_requests_without_a_token_are_401(env: SalesforceEnv) -> None:
    async with httpx.AsyncClient(base_url=env.url) as client:
        response = await client.get(f"{API}/sobjects/Case/describe")

    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
