"""Webhook signing exactly as Zendesk signs, checked against its published test vector."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandboxes.zendesk import sign_webhook
from sandboxes.zendesk.events import event_time, signature_timestamp

PUBLISHED_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="


def test_published_test_vector() -> None:
    signature = sign_webhook(PUBLISHED_SECRET, "2021-07-25T10:00:00Z", b'{"say": "hello"}')
    assert signature == "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0="


@pytest.mark.parametrize(
    ("secret", "timestamp", "body"),
    [
        pytest.param("other-secret", "2021-07-25T10:00:00Z", b'{"say": "hello"}', id="secret"),
        pytest.param(PUBLISHED_SECRET, "2021-07-25T10:00:01Z", b'{"say": "hello"}', id="time"),
        pytest.param(PUBLISHED_SECRET, "2021-07-25T10:00:00Z", b'{"say":"hello"}', id="body"),
    ],
)
def test_any_change_breaks_the_signature(secret: str, timestamp: str, body: bytes) -> None:
    assert sign_webhook(secret, timestamp, body) != "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0="


def test_secret_is_used_as_is_not_base64_decoded() -> None:
    import base64
    import hashlib
    import hmac

    decoded_key = base64.b64decode(PUBLISHED_SECRET)
    wrong = base64.b64encode(
        hmac.new(
            decoded_key, b"2021-07-25T10:00:00Z" + b'{"say": "hello"}', hashlib.sha256
        ).digest()
    ).decode()
    assert sign_webhook(PUBLISHED_SECRET, "2021-07-25T10:00:00Z", b'{"say": "hello"}') != wrong


def test_timestamp_formats() -> None:
    moment = datetime(2025, 1, 8, 14, 25, 30, 123456, tzinfo=UTC)
    assert signature_timestamp(moment) == "2025-01-08T14:25:30Z"
    assert event_time(moment) == "2025-01-08T14:25:30.123456000Z"
