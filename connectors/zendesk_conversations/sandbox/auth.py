"""API authentication as Sunshine Conversations does it for server-to-server calls.

Two ways, both with an API key (a key id and a secret):

* Basic: ``Authorization: Basic base64(key_id:secret)``.
* JWT: ``Authorization: Bearer <jwt>`` signed HS256 with the secret; the header names the key
  in ``kid``; the payload carries ``scope``. Unsigned tokens (``alg: none``) and other
  algorithms are refused; an app key may only sign ``scope: app`` tokens.

Failures are 401s in the platform's error shape. ``invalid_auth`` titles for a missing ``kid``
and for an account scope signed with an app key are the platform's own wording; the others
follow the same style. The JWT check is done here with ``hmac`` (HS256 is one HMAC), so the
sandbox needs no JWT library at run time.
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

from connectors.base.sandbox.clock import Clock
from connectors.zendesk_conversations.sandbox.errors import SunshineAPIError

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
        if scope != "app":
            raise _invalid(f"Invalid JWT body. Invalid scope: {scope}")
        exp = payload.get("exp")
        if (
            isinstance(exp, int | float)
            and not isinstance(exp, bool)
            and exp <= self._clock.now().timestamp()
        ):
            raise _invalid("Invalid JWT. Token has expired")
        return key
