"""OAuth 2.0 for the Salesforce connector: the JWT bearer flow and the refresh token flow, as
``TokenSource``s (``connectors.salesforce.session``).

Sources:

* "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration",
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm : POST
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and ``assertion`` to
  ``{login}/services/oauth2/token``; the JWT header is ``{"alg":"RS256"}``, its claims ``iss``
  (consumer key), ``sub`` (username), ``aud`` (the login server), ``exp``; signed with the key
  of the certificate uploaded to the connected app; the answer has no refresh token, so
  "refreshing" is a new assertion.
* "OAuth 2.0 Refresh Token Flow for Renewed Sessions",
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm :
  ``grant_type=refresh_token``, ``refresh_token``, ``client_id``, ``client_secret``; the
  answer's ``signature`` is base64(HMAC-SHA256(consumer secret, ``id`` + ``issued_at``)),
  checked here when the secret is configured.
* Both answers carry ``access_token``, ``instance_url`` and ``id``
  (``https://login.salesforce.com/id/<org id>/<user id>``), and no expiry: a token lives as
  long as the session timeout of the connected app or org. So a token is refreshed
  ``refresh_margin_seconds`` before ``session_timeout_seconds`` after it was issued (counting
  from issue is the safe side: Salesforce counts from the last use).
* Error answers are ``{"error", "error_description"}`` with HTTP 400 ("OAuth 2.0
  Authorization Errors",
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flow_errors.htm).

UNVERIFIED (searched "JWT bearer flow exp claim expiration within 3 minutes Salesforce"; only
third-party answers found): how far ahead ``exp`` may lie. The assertion expires
``_ASSERTION_LIFETIME_S`` (2 minutes) after it is made, inside the 3 minutes developers quote.

One refresh at a time: concurrent callers that find the token due share one token request and
its outcome. A failed request counts in ``deskstream_salesforce_token_failures_total`` and
raises one error saying what to check; the next ``session()`` tries again.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from prometheus_client import CollectorRegistry, Counter

from connectors.base.http import redact
from connectors.salesforce.session import SalesforceSession
from connectors.salesforce.settings import SalesforceSettings
from schemas.errors import (
    ConfigurationError,
    DeskstreamError,
    FatalAPIError,
    RetriableAPIError,
)

__all__ = [
    "JWT_BEARER",
    "TOKEN_FAILURES",
    "JwtBearerTokenSource",
    "RefreshTokenSource",
    "TokenRefreshError",
    "token_failures_counter",
    "token_source_for",
]

logger = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ASSERTION_LIFETIME_S = 120
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
Clock = Callable[[], float]

#: what to check for each OAuth error code, by flow
_ADVICE: dict[str, str] = {
    "invalid_client_id": "check client_id (the connected app's consumer key) and that login_url "
    "is the org's login server (login.salesforce.com for production, test.salesforce.com for "
    "sandbox orgs)",
    "invalid_client": "check client_secret (the connected app's consumer secret)",
    "jwt_bearer:invalid_grant": "check that username is pre-authorized for the connected app "
    "(admin-approved profile or permission set), that the certificate of private_key_file is "
    "the one uploaded to the connected app, that audience/login_url is the login server, and "
    "that this host's clock is right (the assertion expires in 2 minutes)",
    "refresh_token:invalid_grant": "the refresh token was revoked or has expired (the connected "
    "app's refresh token policy): authorize the connected app again and put the new token in "
    "refresh_token_file",
}


class TokenRefreshError(FatalAPIError):
    """Salesforce refused to issue a token: credentials or connected app set-up. Retrying
    with the same settings will not help; the message says what to check."""


def token_failures_counter(registry: CollectorRegistry | None = None) -> Counter:
    """The failed-token-request counter, on ``registry`` (the worker's, or a test's)."""
    return Counter(
        "deskstream_salesforce_token_failures_total",
        "Salesforce OAuth token requests that failed (refused, unavailable, misconfigured); "
        "API calls wait on a token, so alert on any increase.",
        ["flow", "reason"],
        registry=registry,
    )


#: the process's counter, in no registry until the worker registers it on its own
#: (``connectors.base.registry.connector_collectors``): sinks and sources count here
TOKEN_FAILURES = token_failures_counter(None)


@dataclass(frozen=True, slots=True)
class _Token:
    session: SalesforceSession
    #: when (on the source's clock) the token is due for a refresh
    due_at: float


def org_id_from_identity(identity_url: str) -> str:
    """``https://login.salesforce.com/id/00Dxx/005xx`` → ``00Dxx``."""
    parts = urlsplit(identity_url).path.strip("/").split("/")
    if len(parts) < 3 or parts[-3] != "id" or not parts[-2].startswith("00D"):
        raise ValueError("not an identity URL (/id/<org id>/<user id>)")
    return parts[-2]


class _OAuthTokenSource(abc.ABC):
    """Caches one token, refreshes it ahead of expiry, one token request at a time."""

    flow: str

    def __init__(
        self,
        settings: SalesforceSettings,
        http: httpx.AsyncClient,
        *,
        failures: Counter,
        now: Clock = time.time,
    ) -> None:
        self._settings = settings
        self._http = http
        self._failures = failures
        self._now = now
        self._current: _Token | None = None
        self._pending: asyncio.Task[SalesforceSession] | None = None

    async def session(self) -> SalesforceSession:
        current = self._current
        if current is not None and self._now() < current.due_at:
            return current.session
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_task(self._refresh())
            # Mark a failure retrieved even if every waiter was cancelled meanwhile.
            self._pending.add_done_callback(lambda t: t.cancelled() or t.exception())
        # shield: a caller that is cancelled must not cancel the others' token request
        return await asyncio.shield(self._pending)

    async def invalidate(self, session: SalesforceSession) -> None:
        current = self._current
        # Only the token that failed: a newer one fetched meanwhile stays.
        if current is not None and current.session.access_token == session.access_token:
            self._current = None
            logger.info("salesforce token invalidated flow=%s org=%s", self.flow, session.org_id)

    async def _refresh(self) -> SalesforceSession:
        try:
            issued = self._now()
            token = await self._fetch(issued)
        except DeskstreamError as exc:
            reason = (
                "unavailable"
                if isinstance(exc, RetriableAPIError)
                else "misconfigured"
                if isinstance(exc, ConfigurationError)
                else "refused"
            )
            self._failures.labels(flow=self.flow, reason=reason).inc()
            logger.warning(
                "salesforce token request failed flow=%s reason=%s error=%s",
                self.flow,
                reason,
                exc,
            )
            raise
        finally:
            self._pending = None
        self._current = token
        logger.info("salesforce token issued flow=%s org=%s", self.flow, token.session.org_id)
        return token.session

    async def _fetch(self, issued: float) -> _Token:
        form = self._grant(issued)
        try:
            response = await self._http.post(self._settings.token_url, data=form, timeout=_TIMEOUT)
        except httpx.HTTPError as exc:
            raise RetriableAPIError(
                f"salesforce token request to {self._settings.login_url} failed "
                f"({type(exc).__name__}); will retry. If it persists, check login_url and the "
                "network path to it"
            ) from exc
        body = self._answer(response)
        settings = self._settings
        lifetime = settings.session_timeout_seconds - settings.refresh_margin_seconds
        return _Token(self._session(body), due_at=issued + max(lifetime, 0.0))

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 429 or status >= 500:
            raise RetriableAPIError(
                f"salesforce token endpoint answered {status}: Salesforce is unavailable; "
                "will retry",
                status=status,
            )
        if status >= 400 or not isinstance(body, dict):
            error = str(body.get("error", "")) if isinstance(body, dict) else ""
            description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
            advice = _ADVICE.get(f"{self.flow}:{error}") or _ADVICE.get(error)
            raise TokenRefreshError(
                redact(
                    f"salesforce refused the {self.flow} token request ({status} {error}: "
                    f"{description or 'no description'}); "
                    f"{advice or 'check the connected app and the connector settings'}"
                ),
                status=status,
            )
        return body

    def _session(self, body: dict[str, Any]) -> SalesforceSession:
        token, instance, identity = (body.get(k) for k in ("access_token", "instance_url", "id"))
        if not (isinstance(token, str) and isinstance(instance, str) and isinstance(identity, str)):
            raise RetriableAPIError(
                "salesforce token answer lacks access_token, instance_url or id (a proxy "
                "page?); will retry. If it persists, check login_url"
            )
        try:
            org_id = org_id_from_identity(identity)
        except ValueError:
            raise RetriableAPIError(
                "salesforce token answer's id is not an identity URL; will retry. If it "
                "persists, check that login_url points at a Salesforce login server"
            ) from None
        self._check(body)
        return SalesforceSession(instance.rstrip("/"), token, org_id)

    def _check(self, body: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Flow-specific checks of a successful answer (none by default)."""

    @abc.abstractmethod
    def _grant(self, issued: float) -> dict[str, str]:
        """The token request's form fields."""


class JwtBearerTokenSource(_OAuthTokenSource):
    """Tokens from RS256 assertions signed with ``private_key_file`` (read at each request,
    so a key rotation needs no restart)."""

    flow = "jwt_bearer"

    def _grant(self, issued: float) -> dict[str, str]:
        settings = self._settings
        claims = {
            "iss": settings.client_id,
            "sub": settings.username,
            "aud": settings.jwt_audience(),
            "exp": int(issued) + _ASSERTION_LIFETIME_S,
        }
        return {"grant_type": JWT_BEARER, "assertion": sign_rs256(claims, self._key())}

    def _key(self) -> rsa.RSAPrivateKey:
        pem = self._settings.private_key_pem().get_secret_value().encode()
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                f"the Salesforce private_key_file {self._settings.private_key_file} is not an "
                "unencrypted PEM RSA private key; export the connected app certificate's key "
                "(openssl rsa -in key.pem) and mount it there"
            )
        return key


class RefreshTokenSource(_OAuthTokenSource):
    """Tokens from the refresh token (and consumer secret), read from their files at each
    request."""

    flow = "refresh_token"

    def _grant(self, issued: float) -> dict[str, str]:
        settings = self._settings
        refresh = settings.refresh()
        if refresh is None:
            raise ConfigurationError(
                "the Salesforce connector has no refresh token; set "
                "DESKSTREAM_CONNECTORS__<id>__REFRESH_TOKEN_FILE"
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh.get_secret_value(),
            "client_id": settings.client_id,
        }
        secret = settings.secret()
        if secret is not None:
            form["client_secret"] = secret.get_secret_value()
        return form

    def _check(self, body: dict[str, Any]) -> None:
        secret = self._settings.secret()
        signature = body.get("signature")
        if secret is None or not isinstance(signature, str):
            return
        signed = f"{body['id']}{body.get('issued_at', '')}".encode()
        digest = hmac.new(secret.get_secret_value().encode(), signed, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
            raise TokenRefreshError(
                "salesforce token answer's signature does not match the consumer secret: "
                "check client_secret, and that login_url points at Salesforce"
            )


def sign_rs256(claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """A compact JWS (RFC 7515) of ``claims`` with header ``{"alg":"RS256"}``."""
    header = _b64url(json.dumps({"alg": "RS256"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_source_for(
    settings: SalesforceSettings,
    http: httpx.AsyncClient,
    *,
    failures: Counter,
    now: Clock = time.time,
) -> JwtBearerTokenSource | RefreshTokenSource:
    """The token source of the flow ``settings`` configure."""
    source = JwtBearerTokenSource if settings.flow == "jwt_bearer" else RefreshTokenSource
    return source(settings, http, failures=failures, now=now)
