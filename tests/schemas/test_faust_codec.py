"""The deskstream-avro codec through Faust's own codec API."""

from __future__ import annotations

import pytest
from faust.serializers import codecs

from schemas.codec import encode
from schemas.errors import SchemaError
from schemas.faust_codec import CODEC_NAME, DeskstreamAvroCodec, register_faust_codec
from tests.schemas.examples import EXAMPLES


@pytest.fixture(autouse=True)
def registered() -> None:
    register_faust_codec()


def test_registration_is_idempotent() -> None:
    first = codecs.get_codec(CODEC_NAME)
    register_faust_codec()
    assert codecs.get_codec(CODEC_NAME) is first
    assert isinstance(first, DeskstreamAvroCodec)


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_dumps_writes_single_object_bytes_and_loads_returns_the_model(label: str) -> None:
    example = EXAMPLES[label]
    data = codecs.dumps(CODEC_NAME, example)
    assert data == encode(example)
    loaded = codecs.loads(CODEC_NAME, data)
    assert type(loaded) is type(example)
    assert loaded == example


def test_chains_with_other_faust_codecs() -> None:
    example = EXAMPLES["Envelope-handoff"]
    data = codecs.dumps(f"{CODEC_NAME}|binary", example)
    assert data != encode(example)  # base64 on top
    assert codecs.loads(f"{CODEC_NAME}|binary", data) == example


def test_dumps_refuses_what_is_not_a_model() -> None:
    with pytest.raises(SchemaError, match="writes Deskstream models only, got dict"):
        codecs.dumps(CODEC_NAME, {"event_id": "x"})


def test_loads_reports_garbage_as_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="bad magic"):
        codecs.loads(CODEC_NAME, b'{"event_id": "x"}')
