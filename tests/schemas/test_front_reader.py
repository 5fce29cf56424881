"""An Envelope's source read from the front of its bytes (``schemas._front_reader``) is the
source a whole decode gives, or None, never another one."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings

from schemas._convert import to_datum_for
from schemas._front_reader import EnvelopeSource, compile_front_reader
from schemas.codec import MAGIC, AvroCodec, decode_as, encode, envelope_source
from schemas.models import Envelope, Source
from schemas.registry import get_registry
from schemas.schema_ids import SchemaIds, registry_schema_text
from tests.schemas.examples import EXAMPLES
from tests.schemas.strategies import for_model

ENVELOPES = sorted(label for label, record in EXAMPLES.items() if isinstance(record, Envelope))


def _example(label: str) -> Envelope:
    example = EXAMPLES[label]
    assert isinstance(example, Envelope)
    return example


def _front(source: Source) -> EnvelopeSource:
    return EnvelopeSource(
        source.platform, source.connector_id, source.entity_type, source.entity_id
    )


@pytest.mark.parametrize("label", ENVELOPES)
def test_the_front_of_every_example_is_its_source(label: str) -> None:
    example = _example(label)
    assert envelope_source(encode(example)) == _front(example.source)


@settings(max_examples=200, deadline=None)
@given(for_model(Envelope))
def test_the_front_of_generated_events_is_what_a_decode_reads(event: Envelope) -> None:
    data = encode(event)
    assert envelope_source(data) == _front(decode_as(data, Envelope).source)


def test_a_message_cut_within_its_front_is_left_to_the_decode() -> None:
    data = encode(EXAMPLES["Envelope-handoff"])
    header = len(MAGIC) + 8
    fronts = [envelope_source(data[:end]) for end in range(len(data) + 1)]
    whole = _front(_example("Envelope-handoff").source)
    first = fronts.index(whole)  # from there on only the rest is cut, which it never reads
    assert first > header + len(whole.connector_id) + len(whole.entity_id)
    assert fronts[:first] == [None] * first
    assert fronts[first:] == [whole] * (len(data) + 1 - first)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc3\x01",  # the header cut short
        b"\x00\x00\x00\x00\x07",  # Confluent framing, no registry
        MAGIC + b"\x00" * 8,  # a fingerprint no schema has
        encode(EXAMPLES["SyncCommand"]),  # not an Envelope
    ],
)
def test_anything_but_an_envelope_front_is_left_to_the_decode(data: bytes) -> None:
    assert envelope_source(data) is None


def test_text_that_is_not_utf8_is_left_to_the_decode() -> None:
    data = encode(EXAMPLES["Envelope-case"])
    connector = _example("Envelope-case").source.connector_id.encode()
    damaged = data.replace(connector, b"\xff" * len(connector), 1)
    assert envelope_source(damaged) is None


def test_an_envelope_of_the_released_schema_is_read_from_its_front() -> None:
    (v1,) = [
        entry
        for entry in get_registry().by_fingerprint.values()
        if entry.version == "v1" and entry.name == "deskstream.Envelope"
    ]
    example = _example("Envelope-message")
    buffer = BytesIO()
    schemaless_writer(buffer, v1.parsed, to_datum_for(get_registry().current[v1.name])(example))
    data = MAGIC + v1.fingerprint + buffer.getvalue()
    assert envelope_source(data) == _front(example.source)


def test_an_envelope_in_the_confluent_framing_is_read_from_its_front() -> None:
    ids = SchemaIds(get_registry())
    ids.set_writer("deskstream.Envelope", 7)
    codec = AvroCodec(get_registry(), ids)
    example = _example("Envelope-contact")
    data = codec.encode(example)
    assert data[:1] == b"\x00"
    assert codec.envelope_source(data) == _front(example.source)


def _edited(edit: Any) -> Any:
    """The current Envelope schema, self-contained, changed by ``edit``."""
    schema = json.loads(registry_schema_text(get_registry().current["deskstream.Envelope"]))
    edit(schema)
    return schema


def _source_fields(schema: Any) -> list[Any]:
    fields: list[Any] = schema["fields"][1]["type"]["fields"]
    return fields


def test_a_writer_whose_envelope_begins_otherwise_gets_no_front_reader() -> None:
    assert compile_front_reader(parse_schema(_edited(lambda s: None))) is not None
    edits = [
        lambda s: s["fields"].insert(1, {"name": "tenant", "type": "string"}),
        lambda s: s["fields"][0].update(type="bytes"),  # an id of another type
        lambda s: _source_fields(s).pop(1),  # no connector id
        lambda s: _source_fields(s).insert(0, {"name": "tenant", "type": "string"}),
        lambda s: _source_fields(s)[1].update(type=["null", "string"]),  # optional now
    ]
    for edit in edits:
        assert compile_front_reader(parse_schema(_edited(edit))) is None


def test_an_entity_type_this_version_does_not_know_is_left_to_the_decode() -> None:
    # A newer producer's Envelope, its entity types led by one this version lacks.
    def add_ticket(schema: Any) -> None:
        entity_type = _source_fields(schema)[2]["type"]
        entity_type["symbols"] = ["ticket", *entity_type["symbols"]]
        entity_type["default"] = "case"

    ids = SchemaIds(get_registry(), lambda schema_id: json.dumps(_edited(add_ticket)))
    codec = AvroCodec(get_registry(), ids)
    newer = ids.entry(42)
    example = _example("Envelope-case")
    datum = to_datum_for(get_registry().current["deskstream.Envelope"])(example)
    for symbol, expected in (("ticket", None), ("case", _front(example.source))):
        datum["source"]["entity_type"] = symbol
        buffer = BytesIO()
        schemaless_writer(buffer, newer.parsed, datum)
        message = b"\x00" + (42).to_bytes(4, "big") + buffer.getvalue()
        assert codec.envelope_source(message) == expected
