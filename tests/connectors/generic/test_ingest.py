from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from connectors.base.ingest import WebhookRequest
from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, GenericIngest, sign
from schemas.errors import ConfigurationError, SignatureError
from tests.factories import NOW, body_of, case_event, signed_headers

SECRET = "whsec-test"


def _connector(secret: str | None = SECRET) -> GenericIngest:
    return GenericIngest(connector_id="crm", secret=SecretStr(secret) if secret else None)


def _request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(connector_id="crm", headers=headers, body=body, received_at=NOW)


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Vector computed outside Python: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
    assert (
        sign("key", 1700000000, b"{}")
        == "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
    )


def test_a_correctly_signed_delivery_verifies() -> None:
    body = body_of(case_event())
    _connector().verify(_request(body, signed_headers(SECRET, body)))


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        pytest.param(
            lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=00"}, b), "does not match", id="forged"
        ),
        pytest.param(lambda h, b: (h, b + b" "), "does not match", id="body-tampered"),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b),
            "missing x-deskstream-signature",
            id="unsigned",
        ),
        pytest.param(
            lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), "non-numeric", id="bad-timestamp"
        ),
    ],
)
def test_refused_deliveries_say_why(mutate: object, fragment: str) -> None:
    body = body_of(case_event())
    headers, body = mutate(signed_headers(SECRET, body), body)  # type: ignore[operator]
    with pytest.raises(SignatureError, match=fragment):
        _connector().verify(_request(body, headers))


@pytest.mark.parametrize(
    ("age", "says"),
    [
        (timedelta(minutes=6), "beyond the connector's 300 s window"),
        (-timedelta(minutes=6), "ahead of this worker's clock"),
    ],
    ids=["replayed", "future"],
)
def test_stale_or_future_signatures_are_refused(age: timedelta, says: str) -> None:
    body = body_of(case_event())
    with pytest.raises(SignatureError, match=says):
        _connector().verify(_request(body, signed_headers(SECRET, body, at=NOW - age)))


def test_a_signature_with_another_secret_is_refused() -> None:
    body = body_of(case_event())
    with pytest.raises(SignatureError):
        _connector().verify(_request(body, signed_headers("other-secret", body)))


def test_missing_secret_is_a_configuration_error_naming_the_variable() -> None:
    body = body_of(case_event())
    with pytest.raises(ConfigurationError, match="DESKSTREAM_CONNECTORS__crm__SECRET_FILE"):
        _connector(secret=None).verify(_request(body, signed_headers(SECRET, body)))


def test_delivery_id_prefers_the_senders_id_and_is_stable_otherwise() -> None:
    body = body_of(case_event())
    with_id = _request(body, {"x-deskstream-delivery": "d-1"})
    assert _connector().delivery_id(with_id) == "generic:d-1"
    first = _connector().delivery_id(_request(body, {}))
    assert first == _connector().delivery_id(_request(body, {}))
    assert first != _connector().delivery_id(_request(body + b"\n", {}))


def test_partition_key_is_the_source_entity_and_never_raises() -> None:
    assert _connector().partition_key(_request(body_of(case_event("9")), {})) == "crm:case:9"
    assert _connector().partition_key(_request(b"\xff not json", {})) == "crm:unparsed"
