"""Signature primitives shared by the platform verifiers: constant-time comparison and a
freshness window, so every connector refuses forged and replayed deliveries the same way."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from schemas.errors import SignatureError

__all__ = ["MAX_AHEAD", "check_fresh", "check_fresh_unix", "require_equal"]


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


#: A signing time may be this far ahead of our clock: skew between two NTP-synced hosts is well
#: under a second, so more than this is a clock fault or a forged time, whatever the window.
MAX_AHEAD = timedelta(minutes=5)


def _refuse_age(shown: str, age_s: int, window: timedelta) -> SignatureError:
    if age_s < 0:
        return SignatureError(
            f"signature timestamp {shown} is {-age_s} s ahead of this worker's clock (at most "
            f"{int(MAX_AHEAD.total_seconds())} s allowed): a clock out of sync or a forged time; "
            "nothing was stored. Check NTP on the worker and the sender"
        )
    return SignatureError(
        f"signature timestamp {shown} is {age_s} s old, beyond the connector's "
        f"{int(window.total_seconds())} s window: a replay, or a retry later than the window "
        "allows; nothing was stored. If the platform retries that late, widen the connector's "
        "signature_window_seconds"
    )


def check_fresh(signed_at: datetime, now: datetime, window: timedelta) -> None:
    """Refuse deliveries signed more than ``window`` ago (a replay, or a retry later than
    expected) or more than ``MAX_AHEAD`` in the future (a clock fault)."""
    age = now - signed_at
    if age > window or -age > MAX_AHEAD:
        raise _refuse_age(signed_at.isoformat(), int(age.total_seconds()), window)


def check_fresh_unix(signed_at: int, now: datetime, window: timedelta) -> None:
    """``check_fresh`` for a Unix-seconds timestamp, in plain numbers: a value no datetime can
    hold (``-99999999999``) is refused as stale rather than failing to convert."""
    age = int(now.timestamp()) - signed_at  # integers: no overflow, whatever the value
    if age > window.total_seconds() or -age > MAX_AHEAD.total_seconds():
        shown = str(signed_at) if abs(age) < 10**12 else f"{str(signed_at)[:16]}..."
        bounded = max(-(10**12), min(age, 10**12))
        raise _refuse_age(f"{shown} (Unix seconds)", bounded, window)
