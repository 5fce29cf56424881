"""OAuth 2.0 for the sandbox org: the token endpoint, access tokens (sessions) and their expiry.

``POST /services/oauth2/token`` (form encoded) supports the two flows a server integration
uses. Sources, and what each settles:

* "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration",
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm : the
  client posts ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and ``assertion``;
  the JWT is signed RS256 with the key whose certificate is on the connected app; claims
  ``iss`` (consumer key), ``sub`` (username), ``aud`` (the login server,
  ``https://login.salesforce.com`` / ``https://test.salesforce.com``, or the site URL),
  ``exp``; it needs prior approval of the app for the user; no refresh token is issued.
  The response is ``access_token``, ``scope``, ``instance_url``, ``id``, ``token_type``.
* "OAuth 2.0 Authorization Errors",
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flow_errors.htm : a
  failed JWT bearer request is a standard OAuth error response (RFC 7523), HTTP 400 with
  ``{"error", "error_description"}``.
* "OAuth 2.0 Refresh Token Flow for Renewed Sessions",
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm ,
  and the REST API guide's "Understanding the OAuth Refresh Token Process"
  (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm):
  ``grant_type=refresh_token``, ``refresh_token``, ``client_id``, ``client_secret``
  ("required unless the Require Secret for Web Server Flow setting is not enabled": the
  sandbox requires it unless ``refresh_requires_secret`` is off); the response adds
  ``signature`` (HMAC-SHA256 of ``id`` + ``issued_at`` with the consumer secret) and
  ``issued_at`` (ms).
* Same pages: access tokens last as long as the session timeout; an expired one answers
  "Session expired or invalid" (REST 401 ``INVALID_SESSION_ID``, see ``rest_common``).

UNVERIFIED (no official page found; queries tried: "OAuth 2.0 JWT Bearer Flow construct JWT
iss aud sub exp expiration within 3 minutes", "Salesforce OAuth token endpoint error codes
invalid_grant invalid_client_id", "The validity must be the expiration time of the assertion
within 3 minutes"): the ``error_description`` wordings ("audience is invalid", "expired
authorization code", "user hasn't approved this consumer", "client identifier invalid",
"client secret required") are
the ones developers quote from real orgs; the JWT page's own text on how far ahead ``exp``
may lie could not be read, so the sandbox plays the harsher reading and refuses an ``exp``
more than ``jwt_max_lifetime`` (3 minutes) ahead as well as one in the past.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandboxes.base.clock import Clock

__all__ = ["ConnectedApp", "OAuthServer", "Session", "load_public_key"]

logger = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_TOKEN_CHARS = string.ascii_letters + string.digits + "._"


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM certificate (as uploaded to a connected app) or key."""
    data = pem.encode() if isinstance(pem, str) else pem
    key: object
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate or public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the connected app certificate must hold an RSA key (RS256)")
    return key


@dataclass
class ConnectedApp:
    consumer_key: str
    consumer_secret: str
    public_keys: list[rsa.RSAPublicKey] = field(default_factory=list)
    #: Users pre-authorized for the JWT bearer flow (by username).
    authorized_usernames: set[str] = field(default_factory=set)
    scope: str = "api refresh_token"
    #: The connected app's "Require Secret for Web Server Flow" (on by default): the refresh
    #: token flow then needs ``client_secret``.
    require_secret: bool = True


@dataclass
class Session:
    """An access token and the user it acts for."""

    token: str
    user_id: str
    username: str
    client_id: str
    issued_at: datetime
    last_used: datetime


@dataclass
class _RefreshGrant:
    user_id: str
    username: str
    client_id: str


class _OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class OAuthServer:
    """Connected apps, users, refresh tokens and live sessions of one org."""

    def __init__(
        self,
        *,
        clock: Clock,
        rng: random.Random,
        org_id: str,
        users: dict[str, str],
        session_timeout: timedelta,
        audiences: tuple[str, ...],
        base_url: Callable[[], str],
        jwt_max_lifetime: timedelta = timedelta(minutes=3),
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.org_id = org_id
        self.users = users  # username -> user id
        self.session_timeout = session_timeout
        self.audiences = audiences
        self.jwt_max_lifetime = jwt_max_lifetime
        self.apps: dict[str, ConnectedApp] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, _RefreshGrant] = {}
        self._base_url = base_url

    @property
    def base_url(self) -> str:
        """The instance (and login) URL: where the sandbox is served."""
        return self._base_url().rstrip("/")

    # -- set-up ---------------------------------------------------------------------------

    def add_app(self, app: ConnectedApp) -> None:
        self.apps[app.consumer_key] = app

    def add_refresh_token(self, token: str, *, username: str, client_id: str) -> None:
        self.refresh_tokens[token] = _RefreshGrant(self.users[username], username, client_id)

    def expire_all(self) -> int:
        count = len(self.sessions)
        self.sessions.clear()
        return count

    # -- sessions -------------------------------------------------------------------------

    def _new_token(self, length: int) -> str:
        return "".join(self.rng.choice(_TOKEN_CHARS) for _ in range(length))

    def issue(self, *, username: str, client_id: str) -> Session:
        now = self.clock.now()
        token = f"{self.org_id[:15]}!{self._new_token(96)}"
        session = Session(token, self.users[username], username, client_id, now, now)
        self.sessions[token] = session
        return session

    def authenticate(self, token: str) -> Session | None:
        """The live session for ``token``; using it extends its inactivity timeout."""
        session = self.sessions.get(token)
        if session is None:
            return None
        now = self.clock.now()
        if now - session.last_used >= self.session_timeout:
            del self.sessions[token]
            logger.info("salesforce session expired user=%s", session.user_id)
            return None
        session.last_used = now
        return session

    def session_from_header(self, authorization: str | None) -> Session | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token.strip():
            return None
        return self.authenticate(token.strip())

    def identity_url(self, user_id: str, base_url: str | None = None) -> str:
        return f"{base_url or self.base_url}/id/{self.org_id}/{user_id}"

    # -- the token endpoint ---------------------------------------------------------------

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {key: str(value) for key, value in form.items()}
        grant_type = params.get("grant_type", "")
        # Behind a bare TestServer the URL is only known from the request itself.
        base_url = self.base_url or f"{request.scheme}://{request.host}"
        try:
            if grant_type == JWT_BEARER:
                body = self._jwt_bearer(params.get("assertion", ""), base_url)
            elif grant_type == "refresh_token":
                body = self._refresh(params, base_url)
            else:
                raise _OAuthError("unsupported_grant_type", "grant type not supported")
        except _OAuthError as exc:
            logger.info("salesforce oauth refused grant=%s error=%s", grant_type, exc.error)
            return web.json_response(
                {"error": exc.error, "error_description": exc.description},
                status=exc.status,
                headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"},
            )
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def _jwt_bearer(self, assertion: str, base_url: str) -> dict[str, Any]:
        header, claims, signing_input, signature = _split_jwt(assertion)
        app = self.apps.get(str(claims.get("iss", "")))
        if app is None:
            raise _OAuthError("invalid_client_id", "client identifier invalid")
        if header.get("alg") != "RS256" or not _verify_rs256(app, signing_input, signature):
            raise _OAuthError("invalid_grant", "invalid assertion")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(str(a).rstrip("/") in self._audiences(base_url) for a in audiences):
            raise _OAuthError("invalid_grant", "audience is invalid")
        expires = claims.get("exp")
        if isinstance(expires, str) and expires.isascii() and expires.isdigit():
            # simple-salesforce sends ``exp`` as a string of digits, and its JWT login works
            # against real orgs: Salesforce reads such strings, so the sandbox does too.
            expires = int(expires)
        now = self.clock.now().timestamp()
        if (
            not isinstance(expires, int | float)
            or isinstance(expires, bool)
            or expires <= now
            or expires > now + self.jwt_max_lifetime.total_seconds()
        ):
            raise _OAuthError("invalid_grant", "expired authorization code")
        username = str(claims.get("sub", ""))
        if username not in self.users or username not in app.authorized_usernames:
            raise _OAuthError("invalid_grant", "user hasn't approved this consumer")
        session = self.issue(username=username, client_id=app.consumer_key)
        logger.info("salesforce oauth jwt-bearer user=%s", session.user_id)
        return {
            "access_token": session.token,
            "scope": app.scope,
            "instance_url": base_url,
            "id": self.identity_url(session.user_id, base_url),
            "token_type": "Bearer",
        }

    def _audiences(self, base_url: str) -> set[str]:
        return {a.rstrip("/") for a in (*self.audiences, base_url) if a}

    def _refresh(self, params: dict[str, str], base_url: str) -> dict[str, Any]:
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            raise _OAuthError("invalid_client_id", "client identifier invalid")
        secret = params.get("client_secret")
        if secret is None and app.require_secret:
            raise _OAuthError("invalid_client", "client secret required")
        if secret is not None and not hmac.compare_digest(secret, app.consumer_secret):
            raise _OAuthError("invalid_client", "invalid client credentials")
        grant = self.refresh_tokens.get(params.get("refresh_token", ""))
        if grant is None or grant.client_id != app.consumer_key:
            raise _OAuthError("invalid_grant", "expired access/refresh token")
        session = self.issue(username=grant.username, client_id=app.consumer_key)
        issued_at = str(int(session.issued_at.timestamp() * 1000))
        identity = self.identity_url(session.user_id, base_url)
        # Salesforce signs id + issued_at with the consumer secret so clients can check them.
        digest = hmac.new(
            app.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        logger.info("salesforce oauth refresh user=%s", session.user_id)
        return {
            "access_token": session.token,
            "signature": base64.b64encode(digest).decode(),
            "scope": app.scope,
            "instance_url": base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }

    async def revoke_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", ""))
        if self.sessions.pop(token, None) is None and self.refresh_tokens.pop(token, None) is None:
            return web.json_response(
                {
                    "error": "unsupported_token_type",
                    "error_description": "this token type is not supported",
                },
                status=400,
            )
        return web.Response(status=200)


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _split_jwt(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _OAuthError("invalid_grant", "invalid assertion")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error):
        raise _OAuthError("invalid_grant", "invalid assertion") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _OAuthError("invalid_grant", "invalid assertion")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _verify_rs256(app: ConnectedApp, signing_input: bytes, signature: bytes) -> bool:
    for key in app.public_keys:
        try:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False
