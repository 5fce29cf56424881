"""Request-body and query validation, following the official schemas' constraints.

Every function either returns the cleaned value or raises a 400 ``bad_request``
(:func:`~sandboxes.zendesk_conversations.errors.bad_request`).
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlparse

from sandboxes.zendesk_conversations.config import METADATA_LIMIT_BYTES
from sandboxes.zendesk_conversations.errors import bad_request

__all__ = [
    "Page",
    "author",
    "content",
    "control_reason",
    "metadata",
    "optional_str",
    "page",
    "profile",
    "require_object",
]

_PROFILE_LIMITS: Final = {
    "givenName": 128,
    "surname": 128,
    "email": 128,
    "avatarUrl": 2048,
    "locale": 64,
}
_CONTROL_REASONS: Final = frozenset({"ticketClosed", "transferToEmail"})
#: Content types the platform knows; text, file and image are checked field by field, the
#: structured ones (carousel, list, ...) are stored as sent.
_CONTENT_TYPES: Final = frozenset(
    {"text", "file", "image", "carousel", "form", "formResponse", "list", "location", "template"}
)
_TEXT_LIMIT: Final = 4096
_CURSOR = re.compile(r"^[0-9a-fA-F]{24}$")


def require_object(value: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"Invalid {what}: expected a JSON object")
    return value


def optional_str(
    body: Mapping[str, Any], name: str, *, max_length: int, nullable: bool = True
) -> str | None:
    value = body.get(name)
    if value is None:
        if name in body and not nullable:
            raise bad_request(f"{name} must be a string")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise bad_request(f"{name} must be a string of 1 to {max_length} characters")
    return value


def metadata(value: Any, name: str = "metadata") -> dict[str, Any] | None:
    """A flat object of strings, numbers and booleans, at most 4 KB as JSON."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"{name} must be an object")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise bad_request(
                f"{name} must be a flat object: {key!r} is not a string, number or boolean"
            )
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > METADATA_LIMIT_BYTES:
        raise bad_request(f"{name} exceeds the maximum size of 4KB ({size} bytes)")
    return dict(value)


def profile(value: Any) -> dict[str, Any]:
    """The known profile fields; ``null`` clears one, unknown fields are dropped."""
    if value is None:
        return {}
    body = require_object(value, "profile")
    cleaned: dict[str, Any] = {}
    for name, limit in _PROFILE_LIMITS.items():
        if name in body:
            cleaned[name] = optional_str(body, name, max_length=limit)
    email = cleaned.get("email")
    if email is not None and "@" not in email:
        raise bad_request("profile.email must be an email address")
    return cleaned


def control_reason(body: Mapping[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is None:
        return None
    if reason not in _CONTROL_REASONS:
        allowed = ", ".join(sorted(_CONTROL_REASONS))
        raise bad_request(f"reason must be one of {allowed}")
    return str(reason)


def author(value: Any) -> dict[str, Any]:
    """The author as sent: ``type`` business or user; users name ``userId`` or
    ``userExternalId``; the reference is resolved against the conversation later."""
    if value is None:
        raise bad_request("author is required")
    body = require_object(value, "author")
    kind = body.get("type")
    if kind not in ("business", "user"):
        raise bad_request("author.type must be one of business, user")
    cleaned: dict[str, Any] = {"type": kind}
    for name in ("userId", "userExternalId"):
        if name in body:
            if kind != "user":
                raise bad_request(f"author.{name} is only supported when author.type is user")
            cleaned[name] = optional_str(body, name, max_length=1024, nullable=False)
    if kind == "user" and "userId" not in cleaned and "userExternalId" not in cleaned:
        raise bad_request("author.userId or author.userExternalId is required for user authors")
    subtypes = body.get("subtypes")
    if subtypes is not None:
        if not (isinstance(subtypes, list) and len(subtypes) == 1 and subtypes[0] == "AI"):
            raise bad_request('author.subtypes may only be ["AI"]')
        cleaned["subtypes"] = ["AI"]
    # The spec bounds avatarUrl (2048) but not displayName; 1024 only stops absurd input.
    for name, limit in (("displayName", 1024), ("avatarUrl", 2048)):
        text = optional_str(body, name, max_length=limit)
        if text is not None:
            cleaned[name] = text
    return cleaned


def _media_url(body: Mapping[str, Any], kind: str) -> str:
    url = body.get("mediaUrl")
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise bad_request(f"content.mediaUrl must be an absolute URL for {kind} messages")
    assert isinstance(url, str)
    return url


def content(value: Any) -> dict[str, Any]:
    """Message content; ``file``/``image`` get ``mediaType`` and ``altText`` filled in as the
    platform does when it fetches the media (guessed from the URL, as nothing is fetched)."""
    if value is None:
        raise bad_request("content is required")
    body = require_object(value, "content")
    kind = body.get("type")
    if kind not in _CONTENT_TYPES:
        raise bad_request("content.type is not a supported message type")
    text = body.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > _TEXT_LIMIT):
        raise bad_request(f"content.text must be a string of at most {_TEXT_LIMIT} characters")
    if kind == "text":
        if not text and not any(body.get(k) for k in ("actions", "htmlText", "markdownText")):
            raise bad_request("content.text is required for text messages")
        return dict(body)
    if kind in ("file", "image"):
        cleaned = dict(body)
        url = _media_url(body, kind)
        filename = unquote(urlparse(url).path.rsplit("/", 1)[-1]) or kind
        cleaned.pop("mediaSize", None)  # read-only: the platform measures it
        guessed = mimetypes.guess_type(filename)[0]
        cleaned["mediaType"] = guessed or "application/octet-stream"
        alt = cleaned.get("altText")
        if alt is None:
            cleaned["altText"] = filename[:128]
        elif not isinstance(alt, str) or len(alt) > 128:
            raise bad_request("content.altText must be a string of at most 128 characters")
        return cleaned
    return dict(body)


@dataclass(frozen=True, slots=True)
class Page:
    after: str | None
    before: str | None
    size: int


def page(query: Mapping[str, str], *, default_size: int = 25) -> Page:
    """``page[after]``, ``page[before]`` (record ids, not both) and ``page[size]`` (1-100)."""
    invalid = bad_request("Invalid page query parameters")
    after, before = query.get("page[after]"), query.get("page[before]")
    if after is not None and before is not None:
        raise invalid
    for cursor in (after, before):
        if cursor is not None and not _CURSOR.match(cursor):
            raise invalid
    raw_size = query.get("page[size]")
    size = default_size
    if raw_size is not None:
        try:
            size = int(raw_size)
        except ValueError:
            raise invalid from None
        if not 1 <= size <= 100:
            raise invalid
    return Page(after=after, before=before, size=size)
