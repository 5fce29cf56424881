"""Basic-key and HS256-JWT authentication, and the 401/403 bodies that refuse the rest."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest

from tests.sandboxes.zendesk_conversations.harness import Harness


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _jwt(
    secret: str,
    *,
    kid: str | None,
    payload: dict[str, Any] | None = None,
    algorithm: str = "HS256",
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    claims = {"scope": "app"} if payload is None else payload
    key = "" if algorithm == "none" else secret  # pyjwt signs "none" with an empty key
    return "Bearer " + jwt.encode(claims, key, algorithm=algorithm, headers=headers)


async def _get_user(
    harness: Harness, authorization: str | None, app_id: str | None = None
) -> httpx.Response:
    app = app_id or harness.config.app_id
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=harness.url) as client:
        return await client.get(f"/v2/apps/{app}/users/nobody", headers=headers)


async def test_basic_auth_with_key_id_and_secret_is_accepted(sunshine: Harness) -> None:
    cfg = sunshine.config
    response = await _get_user(sunshine, _basic(cfg.key_id, cfg.key_secret))
    # Authenticated: the request reaches the handler, which does not know the user.
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "user_not_found"


async def test_jwt_signed_with_the_key_and_app_scope_is_accepted(sunshine: Harness) -> None:
    cfg = sunshine.config
    response = await _get_user(sunshine, _jwt(cfg.key_secret, kid=cfg.key_id))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "user_not_found"


async def test_unexpired_jwt_is_accepted_and_expired_is_refused(sunshine: Harness) -> None:
    cfg = sunshine.config
    now = int(sunshine.clock.now().timestamp())
    fresh = _jwt(cfg.key_secret, kid=cfg.key_id, payload={"scope": "app", "exp": now + 60})
    assert (await _get_user(sunshine, fresh)).status_code == 404
    sunshine.clock.advance(61)
    refused = await _get_user(sunshine, fresh)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "invalid_auth"


REFUSED: list[tuple[str, Any, str, str]] = [
    ("no-header", lambda c: None, "unauthorized", "Authorization is required"),
    (
        "unknown-scheme",
        lambda c: f"Token {c.key_secret}",
        "unauthorized",
        "Authorization is required",
    ),
    ("basic-wrong-secret", lambda c: _basic(c.key_id, "nope"), "invalid_auth", ""),
    (
        "basic-unknown-key",
        lambda c: _basic("app_000000000000000000000000", c.key_secret),
        "invalid_auth",
        "",
    ),
    ("basic-not-base64", lambda c: "Basic !!!", "invalid_auth", ""),
    (
        "basic-no-colon",
        lambda c: "Basic " + base64.b64encode(c.key_id.encode()).decode(),
        "invalid_auth",
        "",
    ),
    (
        "jwt-missing-kid",
        lambda c: _jwt(c.key_secret, kid=None),
        "invalid_auth",
        "Invalid JWT header. Missing key id (kid)",
    ),
    (
        "jwt-unsigned",
        lambda c: _jwt(c.key_secret, kid=c.key_id, algorithm="none"),
        "invalid_auth",
        "",
    ),
    (
        "jwt-hs512",
        lambda c: _jwt(c.key_secret * 2, kid=c.key_id, algorithm="HS512"),
        "invalid_auth",
        "",
    ),
    (
        "jwt-wrong-secret",
        lambda c: _jwt("x" * 40, kid=c.key_id),
        "invalid_auth",
        "Invalid JWT signature",
    ),
    (
        "jwt-unknown-kid",
        lambda c: _jwt(c.key_secret, kid="app_111111111111111111111111"),
        "invalid_auth",
        "",
    ),
    (
        "jwt-account-scope",
        lambda c: _jwt(c.key_secret, kid=c.key_id, payload={"scope": "account"}),
        "invalid_auth",
        "Invalid JWT body. Cannot use account scope with app secret key",
    ),
    (
        "jwt-no-scope",
        lambda c: _jwt(c.key_secret, kid=c.key_id, payload={"sub": "x"}),
        "invalid_auth",
        "",
    ),
    (
        "jwt-user-scope",
        lambda c: _jwt(c.key_secret, kid=c.key_id, payload={"scope": "user"}),
        "invalid_auth",
        "",
    ),
    ("bearer-garbage", lambda c: "Bearer not-a-jwt", "invalid_auth", ""),
]


@pytest.mark.parametrize(
    ("make_header", "code", "title"),
    [pytest.param(m, c, t, id=i) for i, m, c, t in REFUSED],
)
async def test_refused_credentials_answer_401_in_the_platform_error_shape(
    sunshine: Harness, make_header: Any, code: str, title: str
) -> None:
    response = await _get_user(sunshine, make_header(sunshine.config))
    assert response.status_code == 401
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["code"] == code
    assert set(errors[0]) == {"code", "title"}
    if title:
        assert errors[0]["title"] == title


async def test_a_valid_key_of_this_app_is_forbidden_on_another_app(sunshine: Harness) -> None:
    cfg = sunshine.config
    response = await _get_user(
        sunshine, _basic(cfg.key_id, cfg.key_secret), app_id="5f0c9a1e3b2d4c0012ffffff"
    )
    assert response.status_code == 403
    assert response.json() == {"errors": [{"code": "forbidden", "title": "Forbidden"}]}


async def test_the_sc_prefix_zendesk_accounts_use_is_served_too(sunshine: Harness) -> None:
    cfg = sunshine.config
    async with httpx.AsyncClient(base_url=sunshine.url, auth=(cfg.key_id, cfg.key_secret)) as c:
        created = await c.post(f"/sc/v2/apps/{cfg.app_id}/users", json={"externalId": "sc-1"})
        assert created.status_code == 201
        fetched = await c.get(f"/v2/apps/{cfg.app_id}/users/sc-1")
    assert fetched.json()["user"]["id"] == created.json()["user"]["id"]


async def test_unknown_api_paths_answer_the_platform_404(sunshine: Harness) -> None:
    response = await sunshine.api.get("/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": "not_found", "title": "Resource not found"}]}


async def test_sandbox_admin_endpoints_need_no_credentials(sunshine: Harness) -> None:
    response = await sunshine.admin.get("/_sandbox/snapshot")
    assert response.status_code == 200
    assert response.json()["app"]["id"] == sunshine.config.app_id


async def test_a_jwt_must_claim_the_scope_of_the_key_that_signs_it(sunshine: Harness) -> None:
    # "API authentication": "a scope claim must be added to the JWT payload which matches the
    # scope of the API key being used".
    cfg = sunshine.config
    secret, kid = cfg.integration_key_secret, cfg.integration_key_id
    integration = _jwt(secret, kid=kid, payload={"scope": "integration"})
    as_app = _jwt(secret, kid=kid, payload={"scope": "app"})
    app_as_integration = _jwt(cfg.key_secret, kid=cfg.key_id, payload={"scope": "integration"})

    ok = await _get_user(sunshine, integration)
    wrong = await _get_user(sunshine, as_app)
    other = await _get_user(sunshine, app_as_integration)

    assert ok.status_code == 404, "authenticated: the handler does not know the user"
    assert wrong.status_code == 401
    assert wrong.json()["errors"][0]["code"] == "invalid_auth"
    assert other.status_code == 401


async def test_an_integration_key_cannot_read_the_switchboard_configuration(
    sunshine: Harness,
) -> None:
    # The spec's ``security`` for the switchboard endpoints lists app and account scope only.
    cfg = sunshine.config
    path = f"/v2/apps/{cfg.app_id}/switchboards"
    async with httpx.AsyncClient(base_url=sunshine.url) as client:
        refused = await client.get(
            path,
            headers={"Authorization": _basic(cfg.integration_key_id, cfg.integration_key_secret)},
        )
        allowed = await client.get(
            path, headers={"Authorization": _basic(cfg.key_id, cfg.key_secret)}
        )

    assert refused.status_code == 403
    assert refused.json() == {"errors": [{"code": "forbidden", "title": "Forbidden"}]}
    assert allowed.status_code == 200
