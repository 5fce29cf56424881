"""Property: every top-level message survives encode -> decode unchanged, with its exact types."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode, decode_as, encode
from schemas.models import TOP_LEVEL_MODELS, AvroRecord, Case, Contact, Envelope
from tests.schemas.examples import EXAMPLES
from tests.schemas.strategies import for_model


def _types_of(value: object) -> object:
    # == on models compares values; True == 1 == 1.0 would hide a branch mix-up, types do not.
    if isinstance(value, AvroRecord):
        return (type(value), {k: _types_of(v) for k, v in value.__dict__.items()})
    if isinstance(value, list):
        return [_types_of(v) for v in value]
    if isinstance(value, dict):
        return {k: _types_of(v) for k, v in value.items()}
    return type(value)


@pytest.mark.parametrize("model", TOP_LEVEL_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_round_trip(model: type[AvroRecord], data: st.DataObject) -> None:
    original = data.draw(for_model(model))
    encoded = encode(original)
    decoded = decode(encoded)
    assert decoded == original
    assert _types_of(decoded) == _types_of(original)
    assert decode_as(encoded, model) == original
    assert encode(decoded) == encoded
    # Built without pydantic's validation (schemas._convert): the same model it would build.
    assert decoded.model_fields_set == set(model.model_fields)
    assert model.model_validate(decoded.model_dump()) == decoded


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),
        st.text(),
    )
)
def test_custom_values_keep_their_exact_type(value: object) -> None:
    # The union that is easiest to get wrong: bool vs long vs double.
    envelope = decode_as(encode(_envelope_with(Contact(custom_attributes={"v": value}))), Envelope)
    assert isinstance(envelope.data, Contact)
    got = envelope.data.custom_attributes["v"]
    assert type(got) is type(value)
    assert got == value


def _envelope_with(data: Contact | Case) -> Envelope:
    base = EXAMPLES["Envelope-case"]
    assert isinstance(base, Envelope)
    return base.model_copy(update={"data": data})
