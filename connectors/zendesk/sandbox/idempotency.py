"""``Idempotency-Key`` on ticket creation.

The first request with a key runs and its response is stored (``x-idempotency-lookup: miss``);
a repeat with the same key and the same parameters gets the stored response back (``hit``);
the same key with other parameters is refused with 400 ``IdempotentRequestError``. Keys live
for two hours. Only successful responses are stored, so a request refused for validation can
be corrected and retried under the same key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base.sandbox.clock import Clock
from connectors.zendesk.sandbox.errors import idempotency_mismatch

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
