"""API authentication as Sunshine Conversations does it for server-to-server calls.

Sources: the spec's Introduction, sections "Authentication" and "Authorization"
(``sunshine-conversations-openapi.yaml`` ``info.description``), and "API authentication",
https://developer.zendesk.com/documentation/conversations/getting-started/api-authentication/ .
Two ways, both with an API key (a key id and a secret):

* Basic: ``Authorization: Basic base64(key_id:secret)``; "the scope of access is determined
  by the owner of the API key" (spec, "Basic Authentication").
* JWT: ``Authorization: Bearer <jwt>``; "the JWT header must contain the key id (kid) of the
  API key that is used to sign it. The algorithm (alg) used should be HS256. Unsigned JWTs
  are not accepted" (spec, "JWTs"); "a scope claim must be added to the JWT payload which
  matches the scope of the API key being used" (guide, "Access scopes"): ``app`` for an app
  key, ``integration`` for a Custom Integration API Key; ``account`` needs an account key.
  An ``exp`` in the past is refused ("Time-based expiration", same guide).
* Scopes (spec, "Authorization"): ``integration`` keys may call Users, Conversations,
  Attachments and Webhooks only; the switchboard configuration endpoints list
  ``app``/``account`` alone (their ``security``), so an integration key gets 403 there
  (the status is UNVERIFIED: the spec lists no 403 for them; query tried "Sunshine
  Conversations api-authentication access scopes integration scope").

Failures are 401s in the platform's error shape ``{"errors":[{"code","title"}]}`` (spec,
"Errors"; ``unauthorized``/"Authorization is required" is its example). The ``invalid_auth``
titles are worded by us (UNVERIFIED; queries: "Sunshine Conversations authentication JWT kid
scope app", "Sunshine Conversations errors"). The JWT check is done here with ``hmac``
(HS256 is one HMAC), so the sandbox needs no JWT library at run time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.zendesk_conversations.errors import SunshineAPIError

__all__ = ["ApiKey", "Authenticator"]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key of the app: app-scoped, or a Custom Integration API Key when
    ``integration_id`` names the integration it belongs to (calls made with it are that
    integration's own, which the switchboard actions take into account)."""

    key_id: str
    secret: str
    app_id: str
    integration_id: str | None = None

    @property
    def scope(self) -> str:
        """The access scope the key carries (and a JWT it signs must claim)."""
        return "app" if self.integration_id is None else "integration"


def _unauthorized() -> SunshineAPIError:
    return SunshineAPIError(401, "unauthorized", "Authorization is required")


def _invalid(title: str) -> SunshineAPIError:
    return SunshineAPIError(401, "invalid_auth", title)


def _b64url_decode(segment: str) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _json_segment(segment: str) -> dict[str, Any]:
    value = json.loads(_b64url_decode(segment))
    if not isinstance(value, dict):
        raise ValueError("JWT segment is not a JSON object")
    return value


class Authenticator:
    """Checks an ``Authorization`` header against the app's keys."""

    def __init__(self, keys: Mapping[str, ApiKey], clock: Clock) -> None:
        self._keys = dict(keys)
        self._clock = clock

    def authenticate(self, header: str | None, app_id: str) -> ApiKey:
        """The key that signed the request; raises a 401/403 :class:`SunshineAPIError`."""
        if not header:
            raise _unauthorized()
        scheme, _, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic" and credentials:
            key = self._basic(credentials)
        elif scheme.lower() == "bearer" and credentials:
            key = self._jwt(credentials)
        else:
            raise _unauthorized()
        if key.app_id != app_id:
            # A valid key of another app: authenticated, but not allowed here.
            raise SunshineAPIError(403, "forbidden", "Forbidden")
        return key

    def _basic(self, credentials: str) -> ApiKey:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid("Invalid basic authentication credentials") from None
        key_id, sep, secret = decoded.partition(":")
        key = self._keys.get(key_id)
        if not sep or key is None or not hmac.compare_digest(key.secret, secret):
            raise _invalid("Invalid basic authentication credentials")
        return key

    def _jwt(self, token: str) -> ApiKey:
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid("Invalid JWT. Malformed token")
        try:
            header = _json_segment(parts[0])
            payload = _json_segment(parts[1])
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid("Invalid JWT. Malformed token") from None
        key_id = header.get("kid")
        if not isinstance(key_id, str) or not key_id:
            raise _invalid("Invalid JWT header. Missing key id (kid)")
        if header.get("alg") != "HS256":
            raise _invalid("Invalid JWT header. Unsupported algorithm, only HS256 is accepted")
        key = self._keys.get(key_id)
        if key is None:
            raise _invalid("Invalid JWT header. Unknown key id (kid)")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        expected = hmac.new(key.secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise _invalid("Invalid JWT signature")
        scope = payload.get("scope")
        if scope is None:
            raise _invalid("Invalid JWT body. Missing scope")
        if scope == "account":
            raise _invalid("Invalid JWT body. Cannot use account scope with app secret key")
        if scope != key.scope:
            raise _invalid(f"Invalid JWT body. Invalid scope: {scope}")
        exp = payload.get("exp")
        if (
            isinstance(exp, int | float)
            and not isinstance(exp, bool)
            and exp <= self._clock.now().timestamp()
        ):
            raise _invalid("Invalid JWT. Token has expired")
        return key
