"""``Idempotency-Key`` on ticket creation.

Source: "Ticketing API" introduction, section "Idempotency",
https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency (read in the
stored copy of https://developer.zendesk.com/api-reference/ticketing/introduction/):

* verified there: the key goes in an ``Idempotency-Key: {unique_key}`` header on a ticket
  create (``POST /api/v2/tickets``), and the first response is the normal ``201 Created``
  with a ``x-idempotency-lookup: miss`` header;
* the rest of that section (a repeat with the same key and parameters replays the stored
  response with ``x-idempotency-lookup: hit``; the same key with other parameters is refused
  with 400 ``{"error": "IdempotentRequestError", "description": "Request parameters don't
  match the given idempotency key"}``; keys expire after two hours) lies past the part of the
  page the stored copy shows. It agrees with the reference notes
  (``/work/shared/reference/platform-apis.md``, which marked the 400 UNVERIFIED) and with
  client libraries built on that section (the Java client's ``IdempotencyUtil``:
  ``hit``/``miss``, ``IdempotentRequestError`` as a 400); UNVERIFIED against the official
  text itself. Searches tried: "Zendesk Idempotency-Key x-idempotency-lookup", "Zendesk
  ticketing API introduction idempotency key expires 2 hours same key different parameters
  error", "IdempotentRequestError Request parameters don't match the given idempotency key".
* UNVERIFIED, no page says: whether a failed create is stored under its key. Here only
  successes are stored, so a create refused for validation can be corrected and retried under
  the same key; the client never reuses a key for a different body on purpose, and treats the
  400 as "an earlier attempt got in first" (``connectors/zendesk/client.py``).
* The 255-character limit on the key is UNVERIFIED (a third-party guide's figure).

Pinned by ``tests/sandboxes/zendesk/test_idempotency.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.zendesk.errors import idempotency_mismatch

__all__ = ["LOOKUP_HEADER", "CachedResponse", "IdempotencyCache", "fingerprint"]

LOOKUP_HEADER = "x-idempotency-lookup"


def fingerprint(payload: Any) -> str:
    """Parameters compared by value, so key order and whitespace do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]
    stored_at: datetime


class IdempotencyCache:
    def __init__(self, ttl_s: float, clock: Clock) -> None:
        self._ttl = timedelta(seconds=ttl_s)
        self._clock = clock
        self._entries: dict[str, CachedResponse] = {}

    def lookup(self, key: str, request_fingerprint: str) -> CachedResponse | None:
        """The stored response for a repeat, None for a new (or expired) key; raises the 400
        Zendesk sends when the key was used with other parameters."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock.now() - entry.stored_at >= self._ttl:
            del self._entries[key]
            return None
        if entry.fingerprint != request_fingerprint:
            raise idempotency_mismatch()
        return entry

    def store(
        self, key: str, request_fingerprint: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        self._entries[key] = CachedResponse(
            request_fingerprint, status, body, dict(headers), self._clock.now()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def reset(self) -> None:
        self._entries.clear()
