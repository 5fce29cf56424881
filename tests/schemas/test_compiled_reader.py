"""The generated Avro readers (``schemas._compiled_reader``) read into the models fastavro's
read and the conversion built, and hand back to fastavro whatever they do not expect."""

from __future__ import annotations

import math
import random
import re
import time
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas._compiled_reader import Unexpected, Unsupported, compile_reader
from schemas._compiled_writer import zigzag
from schemas._convert import model_classes
from schemas.codec import (
    _compiled_reader_for,
    _compiled_writer_for,
    _decode,
    _decode_with_fastavro,
    _default,
    compile_codecs,
    encode,
)
from schemas.errors import SchemaError
from schemas.models import TOP_LEVEL_MODELS, AvroRecord, Contact, Envelope
from schemas.registry import SchemaEntry, get_registry
from tests.schemas.examples import EXAMPLES, contact_with_custom_value
from tests.schemas.strategies import CUSTOM_VALUES, for_model

SEED = 20261205


def _body(record: AvroRecord) -> tuple[SchemaEntry, bytes, int]:
    data = encode(record)
    entry, start = _default()._entry_of(data)
    return entry, data, start


def _compiled(record: AvroRecord) -> AvroRecord:
    entry, data, start = _body(record)
    model, end = compile_reader(entry.parsed, model_classes())(data, start)
    assert end == len(data)
    return model


def _fastavro(record: AvroRecord) -> AvroRecord:
    """What the codec read before the compiled readers: fastavro's datum, then the model."""
    return _decode_with_fastavro(*_body(record))


def _same(first: Any, second: Any) -> bool:
    """Equal values of the same types all the way down (a bool is no int, a StrEnum member no
    str, an aware timestamp no naive one): the models' reprs name every nested value."""
    return type(first) is type(second) and repr(first) == repr(second)


def _outcome(decode: Any, entry: SchemaEntry, data: bytes, start: int) -> str:
    """The model's repr, or the error a reader of the message is given (fastavro's text may
    name its buffer object, at an address of its own each time)."""
    try:
        return repr(decode(entry, data, start))
    except SchemaError as exc:
        return "SchemaError: " + re.sub(r" at 0x[0-9a-f]+", "", str(exc))


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_every_example_is_read_as_fastavro_reads_it(label: str) -> None:
    # Every optional field set, every union branch used, non-ASCII text (tests.schemas.examples)
    example = EXAMPLES[label]
    read, before = _compiled(example), _fastavro(example)
    assert _same(read, before)
    assert read == example
    assert read.model_fields_set == before.model_fields_set


@pytest.mark.parametrize("model", TOP_LEVEL_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_generated_messages_are_read_as_fastavro_reads_them(
    model: type[AvroRecord], data: st.DataObject
) -> None:
    record = data.draw(for_model(model))
    assert _same(_compiled(record), _fastavro(record))


@settings(max_examples=300, deadline=None)
@given(value=CUSTOM_VALUES)
def test_every_kind_of_custom_value_comes_back_as_its_own_type(value: object) -> None:
    # the union's branch decides: a bool stays a bool, a long of any varint size an int
    record = contact_with_custom_value(value)
    read = _compiled(record)
    assert _same(read, _fastavro(record))
    assert isinstance(read, Envelope)
    assert isinstance(read.data, Contact)
    back = read.data.custom_attributes["v"]
    assert type(back) is type(value)
    assert back == value or (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_a_message_cut_short_anywhere_is_refused_as_before(label: str) -> None:
    entry, data, start = _body(EXAMPLES[label])
    for end in range(start, len(data)):
        cut = data[:end]
        assert _outcome(_decode, entry, cut, start) == _outcome(
            _decode_with_fastavro, entry, cut, start
        )
        assert _outcome(_decode, entry, cut, start).startswith("SchemaError")
    more = data + b"\x00"
    assert _outcome(_decode, entry, more, start) == _outcome(
        _decode_with_fastavro, entry, more, start
    )


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_damaged_bytes_are_read_or_refused_exactly_as_fastavro_does(label: str) -> None:
    # Whatever a damaged message holds (a wild varint, a branch or enum index out of range,
    # bytes that are not UTF-8, a boolean byte of 2), the codec's answer is the one it gave
    # before the compiled readers: a model, or the same SchemaError.
    rng = random.Random(f"{SEED}-{label}")
    print(f"seed {SEED}-{label}")
    entry, data, start = _body(EXAMPLES[label])
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(start, len(data))] = rng.randrange(256)
        message = bytes(damaged)
        assert _outcome(_decode, entry, message, start) == _outcome(
            _decode_with_fastavro, entry, message, start
        )


def _custom_long_message(value_bytes: bytes) -> tuple[SchemaEntry, bytes, int]:
    """Envelope-contact with its custom value's long replaced by ``value_bytes``."""
    marker = 1_234_567_891_234
    record = contact_with_custom_value(marker)
    entry, data, start = _body(record)
    assert data.count(zigzag(marker)) == 1
    return entry, data.replace(zigzag(marker), value_bytes), start


def test_a_varint_beyond_64_bits_goes_to_fastavro() -> None:
    entry, data, start = _custom_long_message(b"\xff" * 9 + b"\x03")  # 65 bits
    reader = _compiled_reader_for(entry)
    assert reader is not None
    with pytest.raises(Unexpected, match="beyond 64 bits"):
        reader(data, start)
    assert _outcome(_decode, entry, data, start) == _outcome(
        _decode_with_fastavro, entry, data, start
    )


def test_the_longest_varints_are_read() -> None:
    for value in (2**63 - 1, -(2**63), 2**62, -1, 64):
        entry, data, start = _custom_long_message(zigzag(value))
        reader = _compiled_reader_for(entry)
        assert reader is not None
        model, end = reader(data, start)
        assert end == len(data)
        assert isinstance(model, Envelope)
        assert isinstance(model.data, Contact)
        assert model.data.custom_attributes["v"] == value


def test_messages_of_an_older_schema_are_read_by_fastavro() -> None:
    # fastavro resolves them into the current schema as it reads: no compiled reader
    older = [e for e in get_registry().by_fingerprint.values() if e.reader is not None]
    assert older  # (schemas/v1)
    assert all(_compiled_reader_for(entry) is None for entry in older)
    current = get_registry().entry_for("deskstream.Envelope")
    assert _compiled_reader_for(current) is not None


def test_a_schema_with_a_type_the_generator_does_not_know_gets_no_reader() -> None:
    parsed = parse_schema(
        {
            "type": "record",
            "name": "test.WithFixed",
            "fields": [{"name": "digest", "type": {"type": "fixed", "name": "D", "size": 4}}],
        }
    )
    with pytest.raises(Unsupported, match="no model"):
        compile_reader(parsed, {})


def test_speed(capsys: pytest.CaptureFixture[str]) -> None:
    # Not a gate (machines differ): both figures in the log.
    example = EXAMPLES["Envelope-case"]
    entry, data, start = _body(example)
    reader = compile_reader(entry.parsed, model_classes())
    rounds = 2000
    begin = time.process_time()
    for _ in range(rounds):
        _decode_with_fastavro(entry, data, start)
    middle = time.process_time()
    for _ in range(rounds):
        reader(data, start)
    end = time.process_time()
    fastavro_us = (middle - begin) / rounds * 1e6
    compiled_us = (end - middle) / rounds * 1e6
    with capsys.disabled():
        print(f"\nEnvelope-case: fastavro {fastavro_us:.1f} us, compiled {compiled_us:.1f} us")
    assert _same(reader(data, start)[0], _decode_with_fastavro(entry, data, start))


def test_a_message_in_another_buffer_is_read_by_fastavro() -> None:
    # the compiled reader slices bytes; fastavro reads any buffer, as the codec always did
    entry, data, start = _body(EXAMPLES["Envelope-message"])
    for buffer in (bytearray(data), memoryview(data)):
        assert _same(_decode(entry, buffer, start), _decode(entry, data, start))  # type: ignore[arg-type]


def test_a_starting_worker_has_every_shipped_schema_compiled_both_ways() -> None:
    # (app.worker_cli): no first message waits for its reader, none falls back to fastavro
    current = list(get_registry().current.values())
    assert compile_codecs() == 2 * len(current)
    misses = _compiled_reader_for.cache_info().misses, _compiled_writer_for.cache_info().misses
    for entry in current:
        assert _compiled_reader_for(entry) is not None
        assert _compiled_writer_for(entry) is not None
    assert (
        _compiled_reader_for.cache_info().misses,
        _compiled_writer_for.cache_info().misses,
    ) == misses
