from __future__ import annotations

from typing import Any

import pytest

from connectors.base.settings import ConnectorSettings
from connectors.generic.normalize import GenericNormaliser
from schemas.errors import SkippableRecordError
from schemas.models import (
    Case,
    CaseStatus,
    EntityType,
    Op,
    Platform,
    Priority,
    RawDelivery,
)
from tests.factories import NOW, body_of, case_event


def _generic() -> GenericNormaliser:
    return GenericNormaliser(connector_id="crm", settings=ConnectorSettings(platform="generic"))


def _delivery(body: bytes, delivery_id: str = "generic:d-1") -> RawDelivery:
    return RawDelivery(
        delivery_id=delivery_id,
        connector_id="crm",
        platform=Platform.GENERIC,
        received_at=NOW,
        body=body,
        signature_verified=True,
    )


def test_a_canonical_body_becomes_one_envelope_owned_by_the_connector() -> None:
    [event] = _generic().normalise(_delivery(body_of(case_event("42"))))
    assert event.source.platform is Platform.GENERIC
    assert event.source.connector_id == "crm"
    assert event.source.entity_type is EntityType.CASE
    assert event.source.entity_id == "42"
    assert event.op is Op.UPDATE
    assert event.changed_fields == ["status", "priority"]
    assert isinstance(event.data, Case)
    assert event.data.status is CaseStatus.OPEN
    assert event.data.priority is Priority.HIGH
    assert event.ingested_at == NOW


def test_event_ids_are_deterministic_per_source_event() -> None:
    normalise = _generic().normalise
    [first] = normalise(_delivery(body_of(case_event("42")), delivery_id="a"))
    [again] = normalise(_delivery(body_of(case_event("42")), delivery_id="b"))
    [other] = normalise(_delivery(body_of(case_event("43")), delivery_id="a"))
    assert first.event_id == again.event_id  # same source event, redelivered
    assert first.event_id != other.event_id


def test_without_a_source_event_id_the_delivery_id_decides() -> None:
    event = case_event()
    del event["source"]["source_event_id"]
    [a] = _generic().normalise(_delivery(body_of(event), delivery_id="a"))
    [b] = _generic().normalise(_delivery(body_of(event), delivery_id="b"))
    assert a.event_id != b.event_id


def test_a_delete_carries_no_data() -> None:
    [event] = _generic().normalise(_delivery(body_of(case_event(op="delete", data=None))))
    assert event.op is Op.DELETE
    assert event.data is None


def _bad(**overrides: Any) -> bytes:
    return body_of(case_event(**overrides))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"{not json", "body is not JSON", id="not-json"),
        pytest.param(b"\xff\xfe", "body is not JSON", id="not-utf8"),
        pytest.param(b"[]", "not a canonical event", id="array"),
        pytest.param(_bad(op="upsert"), "op:", id="unknown-op"),
        pytest.param(_bad(extra=1), "extra:", id="unknown-field"),
        pytest.param(
            _bad(data={"type": "contact", "emails": []}),
            "data.type is 'contact'",
            id="type-mismatch",
        ),
        pytest.param(
            _bad(data={"type": "case", "status": "melted"}), "data.status", id="bad-status"
        ),
    ],
)
def test_malformed_bodies_are_skippable_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(SkippableRecordError, match=fragment) as raised:
        _generic().normalise(_delivery(body))
    assert "resend" in raised.value.reason or "JSON object" in raised.value.reason
