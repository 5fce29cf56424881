"""Own-write fingerprints: the second layer of echo detection.

When a sink writes a field, it records ``fingerprint(platform, record, field, value)``; when
that platform's webhook later reports the same value on the same record and field, the sync
stage recognises its own write and suppresses it. Values are canonical (after the platform's
normaliser), so the sink and the normaliser agree on them whatever the platform's spelling
(``SOLVED`` and ``solved`` are one value).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["FIELD_MESSAGE", "fingerprint", "value_hash"]

#: the fingerprint field of a message body, the same on every platform
FIELD_MESSAGE = "message"


def value_hash(value: Any) -> str:
    """A stable hash of a canonical value: key order and list order of tags do not matter."""
    if isinstance(value, list | tuple | set | frozenset):
        value = sorted(str(v) for v in value)
    encoded = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


def fingerprint(platform: str, record_id: str, field: str, value: Any) -> str:
    return f"{platform}:{record_id}:{field}:{value_hash(value)}"
