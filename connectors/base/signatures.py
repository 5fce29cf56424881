"""Signature primitives shared by the platform verifiers: constant-time comparison and a
freshness window, so every connector refuses forged and replayed deliveries the same way."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from app.errors import SignatureError

__all__ = ["check_fresh", "check_fresh_unix", "require_equal"]


def require_equal(expected: str, received: str | None, *, header: str) -> None:
    """Refuse unless ``received`` equals ``expected``, compared in constant time."""
    if received is None:
        raise SignatureError(
            f"missing {header} header: the delivery is not signed; nothing was stored. "
            "Check that the webhook's signing secret is configured on the platform"
        )
    given = received.strip()
    if not given.isascii():
        # compare_digest takes ASCII only, and no signature scheme has other characters.
        raise SignatureError(
            f"{header} holds characters that no signature has (not ASCII): the delivery is "
            "forged or its headers were damaged on the way; nothing was stored"
        )
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError(
            f"{header} does not match: the delivery was forged or signed with another secret; "
            "nothing was stored. If the secret was rotated, update the connector's secret"
        )


def check_fresh(signed_at: datetime, now: datetime, tolerance: timedelta) -> None:
    """Refuse deliveries signed too long ago (replays) or too far ahead (clock skew)."""
    skew = abs(now - signed_at)
    if skew > tolerance:
        raise SignatureError(
            f"signature timestamp {signed_at.isoformat()} is {int(skew.total_seconds())} s away "
            f"from now (window {int(tolerance.total_seconds())} s): a replayed or delayed "
            "delivery, or a clock out of sync; nothing was stored"
        )


def check_fresh_unix(signed_at: int, now: datetime, tolerance: timedelta) -> None:
    """``check_fresh`` for a Unix-seconds timestamp, in plain numbers: a value no datetime can
    hold (``-99999999999``) is refused as stale rather than failing to convert."""
    skew = abs(int(now.timestamp()) - signed_at)  # integers: no overflow, whatever the value
    if skew > tolerance.total_seconds():
        shown = str(signed_at) if skew < 10**12 else f"{str(signed_at)[:16]}..."
        raise SignatureError(
            f"signature timestamp {shown} (Unix seconds) is {min(skew, 10**12)} s away from now "
            f"(window {int(tolerance.total_seconds())} s): a replayed or delayed delivery, or a "
            "clock out of sync; nothing was stored"
        )
