"""Who may use the live chat endpoints: one or more keys per chat client, compared in
constant time.

Keys come from ``DESKSTREAM_CHAT__KEYS`` (``client:key`` pairs, comma or newline separated)
or ``DESKSTREAM_CHAT__KEYS_FILE`` (one pair per line, re-read when the file changes, so a
rotation needs no restart: add the client's new key on a line of its own, move the client
over, remove the old line). A client presents its key as ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from schemas.errors import ConfigurationError

__all__ = ["ChatSettings", "client_of"]


class ChatSettings(BaseModel):
    """``DESKSTREAM_CHAT__*``: the live chat bridge's client-facing side."""

    keys: SecretStr | None = None
    keys_file: Path | None = None
    #: chat client id → the live chat connector its hand-offs go to; a client not listed
    #: goes to the only live chat connector (several need this table)
    workspaces: dict[str, str] = Field(default_factory=dict)
    #: a stream opened without ``Last-Event-ID`` starts this far back in the chat topic
    stream_lookback_seconds: int = Field(default=24 * 3600, ge=1, le=7 * 24 * 3600)


#: path → ((mtime_ns, size, inode), pairs)
_FILES: dict[Path, tuple[tuple[int, int, int], tuple[tuple[str, str], ...]]] = {}


def _pairs(text: str, where: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for number, item in enumerate(text.replace(",", "\n").splitlines(), 1):
        if not item.strip():
            continue
        client, sep, key = item.strip().partition(":")
        if not sep or not client.strip() or not key.strip():
            # Never quote the line: it holds a key.
            raise ConfigurationError(
                f"chat key {number} of {where} is not 'client:key'; write each as the client's "
                "id, a colon and its key"
            )
        pairs.append((client.strip(), key.strip()))
    return tuple(pairs)


def _keys(settings: ChatSettings) -> tuple[tuple[str, str], ...]:
    pairs: tuple[tuple[str, str], ...] = ()
    if settings.keys is not None:
        pairs += _pairs(settings.keys.get_secret_value(), "DESKSTREAM_CHAT__KEYS")
    path = settings.keys_file
    if path is not None:
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            cached = _FILES.get(path)
            if cached is None or cached[0] != stamp:
                cached = (stamp, _pairs(path.read_text(encoding="utf-8"), str(path)))
                _FILES[path] = cached
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read the chat keys file {path} ({type(exc).__name__}); mount it or "
                "point DESKSTREAM_CHAT__KEYS_FILE at it"
            ) from None
        pairs += cached[1]
    return pairs


def client_of(settings: ChatSettings, authorization: str | None) -> str | None:
    """The client whose key the ``Authorization`` header presents, or None. Every key is
    compared, in constant time, whatever matched before."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip().isascii():
        return None
    presented = given.strip().encode()
    found: str | None = None
    for client, key in _keys(settings):
        if hmac.compare_digest(presented, key.encode()) and found is None:
            found = client
    return found
