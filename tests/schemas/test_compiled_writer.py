"""The generated Avro writers (``schemas._compiled_writer``) write fastavro's bytes, and hand
back to fastavro whatever they do not expect."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas._compiled_writer import Unsupported, compile_writer, zigzag
from schemas._convert import model_classes, to_datum_for
from schemas.codec import _write, encode
from schemas.errors import SchemaError
from schemas.models import TOP_LEVEL_MODELS, AvroRecord, Case, Contact, Envelope, Message
from schemas.registry import get_registry
from tests.schemas.examples import EXAMPLES, contact_with_custom_value
from tests.schemas.strategies import CUSTOM_VALUES, for_model

HEADER = b"\xc3\x01header.."


def _fastavro(record: AvroRecord) -> bytes:
    """What the codec wrote before the compiled writers: the datum through fastavro."""
    entry = get_registry().entry_for(record.avro_name)
    return _write(entry, HEADER, to_datum_for(entry)(record), strict=False)


def _compiled(record: AvroRecord) -> bytes:
    entry = get_registry().entry_for(record.avro_name)
    return compile_writer(entry.parsed, model_classes())(record, HEADER)


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_every_example_is_written_as_fastavro_writes_it(label: str) -> None:
    # Every optional field set, every union branch used, non-ASCII text (tests.schemas.examples)
    example = EXAMPLES[label]
    assert _compiled(example) == _fastavro(example)


@pytest.mark.parametrize("model", TOP_LEVEL_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_generated_messages_are_written_as_fastavro_writes_them(
    model: type[AvroRecord], data: st.DataObject
) -> None:
    record = data.draw(for_model(model))
    assert _compiled(record) == _fastavro(record)


def _case_envelope(**case: Any) -> Envelope:
    example = EXAMPLES["Envelope-case"]
    assert isinstance(example, Envelope)
    assert isinstance(example.data, Case)
    return example.model_copy(update={"data": example.data.model_copy(update=case)})


@settings(max_examples=300, deadline=None)
@given(value=CUSTOM_VALUES)
def test_every_kind_of_custom_value_takes_fastavros_branch(value: object) -> None:
    # bool before long before double, as schemas._convert names the branch for fastavro;
    # and the long's varint at every size, negative ones included
    record = contact_with_custom_value(value)
    assert _compiled(record) == _fastavro(record)


def test_long_varints_match_the_avro_spec() -> None:
    # Avro spec, "Binary encoding": zig-zag, then 7 bits per byte, low groups first
    assert zigzag(0) == b"\x00"
    assert zigzag(-1) == b"\x01"
    assert zigzag(1) == b"\x02"
    assert zigzag(-64) == b"\x7f"
    assert zigzag(64) == b"\x80\x01"
    assert zigzag(2**63 - 1) == b"\xfe" + b"\xff" * 8 + b"\x01"
    assert zigzag(-(2**63)) == b"\xff" * 9 + b"\x01"


def test_a_timestamp_in_any_zone_is_written_as_utc_micros() -> None:
    # built without validation, so the zone reaches the writer as it is
    stamp = datetime(2026, 3, 29, 3, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    example = EXAMPLES["Envelope-case"]
    record = example.model_copy(update={"ingested_at": stamp})
    assert _compiled(record) == _fastavro(record)


def test_a_lone_surrogate_is_still_refused_by_fastavro_with_the_field_named() -> None:
    # The compiled writer cannot encode it and hands it back; the codec's SchemaError is what
    # normalize repairs text on (streams.normalize), so it must not change.
    record = _case_envelope(subject="broken \ud800 text")
    with pytest.raises(UnicodeEncodeError):
        _compiled(record)
    with pytest.raises(SchemaError, match=r"cannot encode deskstream\.Envelope"):
        encode(record)


def test_a_value_the_writer_does_not_expect_goes_to_fastavro() -> None:
    # model_construct skips validation: a naive timestamp (fastavro reads it as local time)
    naive = datetime(2026, 1, 2, 3, 4, 5)  # naive: the point of the test
    example = EXAMPLES["Envelope-case"]
    record = example.model_construct(**{**example.__dict__, "ingested_at": naive})
    with pytest.raises(Exception, match="aware datetime"):
        _compiled(record)
    assert encode(record)[10:] == _fastavro(record)[len(HEADER) :]


def test_a_bool_where_an_optional_long_belongs_is_refused_as_fastavro_refuses_it() -> None:
    # pydantic makes True an int 1; a model built without validation keeps it, and fastavro
    # picks a union's branch by validating the value: no branch takes a bool
    example = EXAMPLES["Envelope-message"]
    assert isinstance(example, Envelope)
    assert isinstance(example.data, Message)
    attachment = example.data.attachments[0]
    odd = attachment.model_construct(**{**attachment.__dict__, "size_bytes": True})
    data = example.data.model_construct(**{**example.data.__dict__, "attachments": [odd]})
    record = example.model_construct(**{**example.__dict__, "data": data})
    with pytest.raises(Exception, match="not of type int"):
        _compiled(record)
    with pytest.raises(SchemaError, match="size_bytes"):
        encode(record)


def test_an_integer_beyond_64_bits_is_refused_as_before() -> None:
    example = EXAMPLES["Envelope-contact"]
    assert isinstance(example, Envelope)
    assert isinstance(example.data, Contact)
    data = example.data.model_construct(
        **{**example.data.__dict__, "custom_attributes": {"n": 2**70}}
    )
    record = example.model_construct(**{**example.__dict__, "data": data})
    with pytest.raises(Exception, match="does not fit an Avro long"):
        _compiled(record)
    with pytest.raises(SchemaError):
        encode(record)


def test_a_schema_with_a_type_the_generator_does_not_know_gets_no_writer() -> None:
    parsed = parse_schema(
        {
            "type": "record",
            "name": "test.WithFixed",
            "fields": [{"name": "digest", "type": {"type": "fixed", "name": "D", "size": 4}}],
        }
    )
    with pytest.raises(Unsupported, match="fixed"):
        compile_writer(parsed, {})


def test_speed(capsys: pytest.CaptureFixture[str]) -> None:
    # Not a gate (machines differ): both figures in the log.
    example = EXAMPLES["Envelope-case"]
    entry = get_registry().entry_for(example.avro_name)
    writer = compile_writer(entry.parsed, model_classes())
    rounds = 2000
    start = time.process_time()
    for _ in range(rounds):
        _fastavro(example)
    middle = time.process_time()
    for _ in range(rounds):
        writer(example, HEADER)
    end = time.process_time()
    fastavro_us = (middle - start) / rounds * 1e6
    compiled_us = (end - middle) / rounds * 1e6
    with capsys.disabled():
        print(f"\nEnvelope-case: fastavro {fastavro_us:.1f} us, compiled {compiled_us:.1f} us")
    assert writer(example, HEADER) == _fastavro(example)
