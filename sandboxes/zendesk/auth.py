"""Authentication as Zendesk does it: API tokens and OAuth bearer tokens.

* ``Authorization: Basic base64("{email}/token:{api_token}")`` authenticates as the agent
  with that email, with full access;
* ``Authorization: Bearer <token>`` authenticates as the token's user, limited to its scopes
  (``read``, ``write``, or per resource ``tickets:read``, ``users:write`` ...).

Password basic auth is refused (Zendesk turned it off for the API); anything else is a 401
with the body Zendesk sends.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from sandboxes.zendesk.config import ZendeskSandboxConfig
from sandboxes.zendesk.errors import forbidden, invalid_token, unauthorized
from sandboxes.zendesk.state import User, ZendeskState

__all__ = ["Principal", "authenticate", "basic_header", "check_scope", "resource_of"]


@dataclass(frozen=True)
class Principal:
    """The caller: the user, and the OAuth scopes (None for an API token: full access)."""

    user: User
    scopes: frozenset[str] | None = None


def basic_header(email: str, api_token: str) -> str:
    """The ``Authorization`` value for API-token auth (for tests and tools)."""
    raw = f"{email}/token:{api_token}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _known_token(token: str, tokens: tuple[str, ...]) -> bool:
    return any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens)


def authenticate(
    header: str | None, state: ZendeskState, config: ZendeskSandboxConfig
) -> Principal:
    if not header:
        raise unauthorized()
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        spec = config.oauth_tokens.get(credentials.strip())
        user = state.user_by_email(spec.email) if spec is not None else None
        if spec is None or user is None or not user.active:
            raise invalid_token()
        return Principal(user, frozenset(spec.scopes))
    if scheme.lower() != "basic":
        raise unauthorized()
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized() from None
    login, _, secret = decoded.partition(":")
    email, marker, _ = login.rpartition("/token")
    if not marker or not _known_token(secret, config.api_tokens):
        raise unauthorized()
    user = state.user_by_email(email)
    if user is None or not user.active or user.role == "end-user":
        raise unauthorized()
    return Principal(user)


def resource_of(path: str) -> str:
    """The OAuth scope resource a path belongs to (``users`` or ``tickets``)."""
    parts = path.split("/")
    name = parts[3] if len(parts) > 3 else ""
    if name == "incremental" and len(parts) > 4:
        name = parts[4]
    name = name.removesuffix(".json")
    return "users" if name == "users" else "tickets"


def check_scope(principal: Principal, method: str, path: str) -> None:
    """403 unless the token's scopes allow ``method`` on ``path``."""
    if principal.scopes is None:
        return
    access = "read" if method in ("GET", "HEAD") else "write"
    wanted = {access, f"{resource_of(path)}:{access}"}
    if not wanted & principal.scopes:
        raise forbidden()
