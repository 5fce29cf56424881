"""The Confluent framing and the schema-id cache, without a registry (ids given by hand).

What a registry would answer is played by a dict of id -> schema text built from the shipped
schemas themselves (``registry_schema_text``), so nothing here needs a network.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from schemas._convert import to_datum_for
from schemas.codec import (
    CONFLUENT_HEADER_SIZE,
    HEADER_SIZE,
    MAGIC,
    AvroCodec,
    decode,
    encode,
    schema_ids,
    use_schema_ids,
    writer_schema_id,
)
from schemas.errors import SchemaError
from schemas.models import TOP_LEVEL_MODELS
from schemas.registry import get_registry
from schemas.schema_ids import SchemaIds, registry_schema_text
from tests.schemas.examples import EXAMPLES

GOLDEN: dict[str, str] = json.loads(
    Path(__file__).with_name("golden.json").read_text(encoding="utf-8")
)
#: ids a registry could have given, one per top-level message
IDS = {model.avro_name: 100 + n for n, model in enumerate(TOP_LEVEL_MODELS)}


class Registry:
    """What ``GET /schemas/ids/{id}`` answers, and how often it was asked."""

    def __init__(self, schemas: dict[int, str] | None = None) -> None:
        self.schemas = schemas or {}
        self.asked: list[int] = []

    def fetch(self, schema_id: int) -> str:
        self.asked.append(schema_id)
        try:
            return self.schemas[schema_id]
        except KeyError:
            raise SchemaError(f"Schema {schema_id} not found") from None


def _ids(fetch: Registry | None = None) -> SchemaIds:
    ids = SchemaIds(get_registry(), None if fetch is None else fetch.fetch)
    for name, schema_id in IDS.items():
        ids.set_writer(name, schema_id)
    return ids


@pytest.fixture
def installed() -> Iterator[SchemaIds]:
    """The module-level codec with ids, as a worker has it after start-up."""
    before = schema_ids()
    ids = _ids()
    use_schema_ids(ids)
    try:
        yield ids
    finally:
        use_schema_ids(before)


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_framing_round_trip(label: str, installed: SchemaIds) -> None:
    example = EXAMPLES[label]
    data = encode(example)
    name = type(example).avro_name
    assert data[:1] == b"\x00"
    assert int.from_bytes(data[1:CONFLUENT_HEADER_SIZE], "big") == IDS[name]
    assert decode(data) == example
    # The body is the very Avro binary the single-object encoding carries: only the header
    # differs, so any Avro decoder reads it once it has the schema.
    single = AvroCodec(get_registry()).encode(example)
    assert data[CONFLUENT_HEADER_SIZE:] == single[HEADER_SIZE:]


def test_exports_record_the_registry_id_or_the_fingerprint_of_the_writer(
    installed: SchemaIds,
) -> None:
    example = EXAMPLES["Envelope-case"]
    name = type(example).avro_name
    assert writer_schema_id(encode(example)) == str(IDS[name])
    old = AvroCodec(get_registry()).encode(example)
    assert writer_schema_id(old) == old[2:HEADER_SIZE].hex()


def test_without_ids_the_single_object_encoding_is_written() -> None:
    example = EXAMPLES["Envelope-case"]
    assert AvroCodec(get_registry()).encode(example)[:2] == MAGIC


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_old_single_object_records_are_read_once_ids_are_installed(
    label: str, installed: SchemaIds
) -> None:
    # What a worker before the registry wrote (the golden bytes pin that format).
    assert decode(bytes.fromhex(GOLDEN[label])) == EXAMPLES[label]


def test_the_hot_path_never_asks_the_registry_after_warm_up() -> None:
    registry = Registry()
    codec = AvroCodec(get_registry(), _ids(registry))
    messages = [codec.encode(example) for example in EXAMPLES.values()]
    for _ in range(3):
        for message in messages:
            codec.decode(message)
    assert registry.asked == []


def test_an_unknown_id_is_fetched_once_and_cached() -> None:
    # A schema another producer registered: the shipped Envelope under id 7 (same content).
    envelope = get_registry().current["deskstream.Envelope"]
    registry = Registry({7: registry_schema_text(envelope)})
    codec = AvroCodec(get_registry(), _ids(registry))
    body = codec.encode(EXAMPLES["Envelope-case"])[CONFLUENT_HEADER_SIZE:]
    message = b"\x00" + (7).to_bytes(4, "big") + body
    for _ in range(5):
        assert codec.decode(message) == EXAMPLES["Envelope-case"]
    assert registry.asked == [7]


def test_a_newer_producers_schema_is_resolved_into_ours() -> None:
    # A newer Envelope with one more field (with a default, as compatibility demands).
    newer = json.loads(registry_schema_text(get_registry().current["deskstream.Envelope"]))
    newer["fields"].append({"name": "tenant", "type": "string", "default": "acme"})
    registry = Registry({42: json.dumps(newer)})
    ids = _ids(registry)
    entry = ids.entry(42)
    assert entry.name == "deskstream.Envelope"
    assert entry.reader is not None  # read with resolution into the current schema
    example = EXAMPLES["Envelope-case"]
    datum = {**to_datum_for(get_registry().current[entry.name])(example), "tenant": "t1"}
    buffer = io.BytesIO()
    schemaless_writer(buffer, entry.parsed, datum)
    message = b"\x00" + (42).to_bytes(4, "big") + buffer.getvalue()
    assert AvroCodec(get_registry(), ids).decode(message) == example


def test_a_failed_fetch_is_remembered_for_a_while() -> None:
    registry = Registry()
    codec = AvroCodec(get_registry(), _ids(registry))
    message = b"\x00" + (9).to_bytes(4, "big") + b"\x00"
    for _ in range(3):
        with pytest.raises(SchemaError, match="schema id 9: Schema 9 not found"):
            codec.decode(message)
    assert registry.asked == [9]


DECODE_ERRORS: list[Any] = [
    pytest.param(b"\x00\x00\x00", None, "too short for the Confluent framing", id="cut-header"),
    pytest.param(
        b"\x00" + (5).to_bytes(4, "big") + b"\x02",
        None,
        "schema id 5 .*this reader has no schema registry.*DESKSTREAM_SCHEMA_REGISTRY_URL",
        id="framed-without-registry",
    ),
    pytest.param(
        b"\x00" + (IDS["deskstream.AuditRecord"]).to_bytes(4, "big") + b"\x02",
        "ids",
        "corrupt deskstream.AuditRecord body",
        id="corrupt-body",
    ),
    pytest.param(b"\x01" * 20, "ids", "neither the Confluent framing", id="bad-magic"),
]


@pytest.mark.parametrize(("data", "with_ids", "message"), DECODE_ERRORS)
def test_decode_errors(data: bytes, with_ids: str | None, message: str) -> None:
    codec = AvroCodec(get_registry(), _ids() if with_ids else None)
    with pytest.raises(SchemaError, match=message):
        codec.decode(data)


def test_a_schema_that_is_not_ours_is_refused_with_its_name() -> None:
    other = {"type": "record", "name": "acme.Order", "fields": [{"name": "id", "type": "long"}]}
    ids = _ids(Registry({3: json.dumps(other)}))
    with pytest.raises(SchemaError, match=r"schema id 3: .* acme\.Order, not one of the messages"):
        ids.entry(3)


def test_one_id_per_content_or_the_registry_is_refused() -> None:
    ids = _ids()
    with pytest.raises(SchemaError, match="two ids, 103 and 999"):
        ids.set_writer("deskstream.SyncCommand", 999)


def test_a_message_type_without_an_id_is_not_written() -> None:
    ids = SchemaIds(get_registry())
    ids.set_writer("deskstream.Envelope", 1)
    with pytest.raises(SchemaError, match=r"no schema id for deskstream\.AuditRecord"):
        AvroCodec(get_registry(), ids).encode(EXAMPLES["AuditRecord"])


def test_registry_schema_text_is_self_contained_and_keeps_defaults() -> None:
    text = registry_schema_text(get_registry().current["deskstream.Envelope"])
    assert "__fastavro" not in text
    parsed = json.loads(text)
    assert parsed["name"] == "deskstream.Envelope"
    link = next(f for f in parsed["fields"] if f["name"] == "link_id")
    assert "default" in link
    # Stable spelling: registering it again finds the same content.
    assert text == registry_schema_text(get_registry().current["deskstream.Envelope"])
