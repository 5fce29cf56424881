"""What normalize writes always fits and always encodes: the poison pills that stalled a
partition (a quarantine record over the message size, a lone surrogate in a text field) and
what is left when even that fails. Real normalisers and the real codec; no broker."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import SecretStr

from app.settings import ConnectorSettings, load_settings
from app.topics import max_message_bytes
from connectors.generic.normalize import GenericNormaliser
from connectors.intercom.normalize import IntercomNormaliser
from schemas.codec import decode_as, encode
from schemas.models import Envelope, Platform, QuarantineRecord, RawDelivery
from schemas.text import REPLACEMENT
from streams.normalize import encode_outcome, fit_quarantine, normalize_delivery, quarantine
from tests.factories import NOW, body_of, case_event

LIMIT = max_message_bytes(load_settings())  # the default body limit and its envelope
WHERE = "on deskstream.raw partition 3 offset 41 (kept there for the raw topic's retention)"
BODY_LIMIT = load_settings().webhook_max_body_bytes


def _delivery(body: bytes, platform: Platform = Platform.GENERIC) -> RawDelivery:
    return RawDelivery(
        delivery_id="sha256:" + hashlib.sha256(body).hexdigest(),
        connector_id="crm",
        platform=platform,
        received_at=NOW,
        headers={"user-agent": "x" * 1024, "content-type": "application/json"},
        body=body,
        content_type="application/json",
        signature_verified=True,
    )


def _generic() -> GenericNormaliser:
    settings = ConnectorSettings(platform="generic", secret=SecretStr("s"))
    return GenericNormaliser(connector_id="crm", settings=settings)


def _outcome(delivery: RawDelivery, max_bytes: int = LIMIT):  # type: ignore[no-untyped-def]
    outcome = normalize_delivery(delivery, _generic(), now=NOW)
    return encode_outcome(outcome, delivery, max_bytes=max_bytes, now=NOW, where=WHERE)


def test_a_malformed_body_just_under_the_body_limit_is_quarantined_whole() -> None:
    body = b"{" + b"x" * (BODY_LIMIT - 2) + b"\xff"  # 999.6 KB-style: signed, not JSON
    encoded = _outcome(_delivery(body))
    assert encoded.events == []
    assert encoded.quarantined is not None
    record, data = encoded.quarantined
    assert len(data) <= LIMIT
    assert decode_as(data, QuarantineRecord).delivery.body == body  # nothing cut: it fits
    assert "not JSON" in record.reason


def test_a_quarantine_record_over_the_message_size_keeps_a_prefix_and_the_fact() -> None:
    body = b"not json " * 20_000  # 180 KB against a 64 KiB message size
    encoded = _outcome(_delivery(body), max_bytes=64 * 1024)
    assert encoded.quarantined is not None
    _, data = encoded.quarantined
    assert len(data) <= 64 * 1024
    kept = decode_as(data, QuarantineRecord)
    assert body.startswith(kept.delivery.body)
    assert len(kept.delivery.body) > 50_000
    assert hashlib.sha256(body).hexdigest() in kept.reason
    assert f"{len(body)} bytes" in kept.reason
    assert WHERE in kept.reason
    assert "not JSON" in kept.reason  # the original reason is still first


def test_a_lone_surrogate_in_a_text_field_is_written_as_u_fffd_with_the_field_named() -> None:
    event = case_event("42")
    event["data"]["subject"] = "Printer \ud800 on fire"
    body = json.dumps(event).encode()  # ensure_ascii: the JSON escape "\ud800"
    assert b"\\ud800" in body
    encoded = _outcome(_delivery(body))
    assert encoded.quarantined is None
    [(model, data)] = encoded.events
    assert encoded.repaired == ["data.subject"]
    written = decode_as(data, Envelope)
    assert written.data.subject == f"Printer {REPLACEMENT} on fire"  # type: ignore[union-attr]
    assert written == model


def test_an_event_over_the_message_size_sends_the_delivery_to_quarantine() -> None:
    event = case_event("42")
    event["data"]["subject"] = "s" * 20_000
    encoded = _outcome(_delivery(body_of(event)), max_bytes=16 * 1024)
    assert encoded.events == []
    assert encoded.quarantined is not None
    record, data = encoded.quarantined
    assert len(data) <= 16 * 1024
    assert "over the 16384-byte message size" in record.reason


def test_surrogates_in_a_quarantine_reason_and_headers_are_made_safe() -> None:
    delivery = _delivery(b"{}").model_copy(update={"headers": {"user-agent": "a\udcffb"}})
    _, data = fit_quarantine(quarantine(delivery, "bad \ud800 value", NOW), LIMIT, WHERE)
    decoded = decode_as(data, QuarantineRecord)
    assert decoded.reason == f"bad {REPLACEMENT} value"
    assert decoded.delivery.headers["user-agent"] == f"a{REPLACEMENT}b"


def test_a_record_that_cannot_be_encoded_at_all_becomes_a_minimal_one() -> None:
    broken = QuarantineRecord.model_construct(  # a bug of ours: a header that is no string
        delivery=_delivery(b"payload").model_copy(update={"headers": {"n": 1}}),
        reason="why",
        stage="normalize",
        quarantined_at=NOW,
    )
    _, data = fit_quarantine(broken, LIMIT, WHERE)
    decoded = decode_as(data, QuarantineRecord)
    assert decoded.delivery.body == b""
    assert decoded.delivery.delivery_id == broken.delivery.delivery_id
    assert decoded.reason.startswith("why [This record is minimal")
    assert hashlib.sha256(b"payload").hexdigest() in decoded.reason
    assert WHERE in decoded.reason


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 1000 + b"]" * 1000, id="deep-nesting"),
        pytest.param(b'{"type":"notification_event","n":' + b"9" * 5000 + b"}", id="huge-int"),
        pytest.param(b'{"n": 1e999}', id="float-overflow"),
    ],
)
def test_intercom_bodies_out_of_bounds_are_quarantined_with_the_reason(body: bytes) -> None:
    settings = ConnectorSettings(platform="intercom", secret=SecretStr("s"))
    normaliser = IntercomNormaliser(connector_id="ic", settings=settings)
    delivery = _delivery(body, Platform.INTERCOM)
    outcome = normalize_delivery(delivery, normaliser, now=NOW)
    assert outcome.quarantined is not None
    assert "bug" not in outcome.quarantined.reason  # a named refusal, not a crash caught
    assert len(encode(outcome.quarantined)) <= LIMIT
