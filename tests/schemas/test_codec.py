"""Golden bytes, wire format, fingerprints and the error table of schemas.codec."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import parse_schema, to_parsing_canonical_form
from pydantic import ValidationError

import schemas.codec
from schemas._convert import to_datum_for
from schemas.codec import (
    HEADER_SIZE,
    MAGIC,
    AvroCodec,
    _write,
    decode,
    decode_as,
    decode_dict,
    encode,
    encode_dict,
    fingerprint_of,
    message_name,
    writer_schema_id,
)
from schemas.errors import SchemaError
from schemas.models import (
    TOP_LEVEL_MODELS,
    Actor,
    ActorKind,
    AuditRecord,
    AvroRecord,
    Envelope,
    SyncCommand,
    WriteResult,
)
from schemas.registry import SchemaRegistry, crc64_avro, get_registry
from tests.schemas.examples import EXAMPLES

GOLDEN: dict[str, str] = json.loads(
    Path(__file__).with_name("golden.json").read_text(encoding="utf-8")
)
REGENERATE = "if the change is intended: .venv/bin/python -m tests.schemas.update_golden"


def test_public_api() -> None:
    assert set(schemas.codec.__all__) == {
        "CONFLUENT_HEADER_SIZE",
        "CONFLUENT_MAGIC",
        "HEADER_SIZE",
        "MAGIC",
        "AvroCodec",
        "EnvelopeSource",
        "compile_codecs",
        "decode",
        "decode_as",
        "decode_dict",
        "encode",
        "encode_dict",
        "envelope_source",
        "fingerprint_of",
        "message_name",
        "schema_ids",
        "use_schema_ids",
        "writer_schema_id",
    }


def test_every_top_level_schema_has_golden_bytes() -> None:
    covered = {type(example) for example in EXAMPLES.values()}
    assert covered == set(TOP_LEVEL_MODELS)
    assert set(GOLDEN) == set(EXAMPLES)


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_golden_bytes(label: str) -> None:
    assert encode(EXAMPLES[label]).hex() == GOLDEN[label], REGENERATE


@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_golden_bytes_decode_to_the_example(label: str) -> None:
    decoded = decode(bytes.fromhex(GOLDEN[label]))
    assert type(decoded) is type(EXAMPLES[label])
    assert decoded == EXAMPLES[label]


@pytest.mark.parametrize("model", TOP_LEVEL_MODELS, ids=lambda m: m.__name__)
def test_header_is_magic_and_little_endian_fingerprint_of_canonical_form(
    model: type[AvroRecord],
) -> None:
    example = next(e for e in EXAMPLES.values() if type(e) is model)
    data = encode(example)
    canonical = to_parsing_canonical_form(get_registry().current[model.avro_name].parsed)
    assert data[:2] == b"\xc3\x01"
    assert data[2:HEADER_SIZE] == crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert data[2:HEADER_SIZE] == fingerprint_of(model) == fingerprint_of(model.avro_name)
    assert message_name(data) == model.avro_name
    assert writer_schema_id(data) == fingerprint_of(model).hex()


def test_body_matches_hand_assembled_avro_binary() -> None:
    # Independent of fastavro: zig-zag varints and length-prefixed UTF-8 per the Avro spec.
    record = AuditRecord(
        audit_id="a",
        at=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=1),
        stage="s",
        decision="d",
        reason="r",
        details={"k": "é"},
    )
    body = bytes.fromhex(
        "0261"  # audit_id: len 1 (zig-zag 2), "a"
        "00"  # link_id: union branch 0 (null)
        "02"  # at: long 1
        "0273"
        "0264"
        "0272"  # stage, decision, reason
        "00"
        "00"  # event_id, command_id: null
        "02"
        "026b"
        "04c3a9"
        "00"  # details: block of 1, "k" -> "é" (2 UTF-8 bytes), end
    )
    assert encode(record) == MAGIC + fingerprint_of(AuditRecord) + body


# --- fingerprints -----------------------------------------------------------------------------

# From Apache Avro's share/test/data/schema-tests.txt (signed Java longs).
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"int"', 8247732601305521295),
    ('"string"', -8142146995180207161),
    ('{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
]


@pytest.mark.parametrize(("canonical", "expected"), SPEC_VECTORS, ids=lambda v: str(v)[:12])
def test_crc64_avro_matches_the_spec_test_vectors(canonical: str, expected: int) -> None:
    assert crc64_avro(canonical.encode()) == expected % 2**64


@pytest.mark.parametrize(("canonical", "expected"), SPEC_VECTORS, ids=lambda v: str(v)[:12])
def test_fastavro_fingerprint_is_the_same_bytes_little_endian(
    canonical: str, expected: int
) -> None:
    ours = crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert fastavro_fingerprint(canonical, "CRC-64-AVRO") == ours.hex()


def test_single_object_header_of_int_matches_other_implementations() -> None:
    # Ruby's and Java's encoders write this header for the schema "int".
    canonical = to_parsing_canonical_form(parse_schema("int"))
    header = MAGIC + crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert header.hex(" ") == "c3 01 8f 5c 39 3f 1a d5 75 72"


@pytest.mark.parametrize("name", sorted(get_registry().current))
def test_registry_fingerprints_agree_with_fastavro(name: str) -> None:
    entry = get_registry().current[name]
    assert fastavro_fingerprint(entry.canonical_form, "CRC-64-AVRO") == entry.fingerprint.hex()


# --- errors ---------------------------------------------------------------------------------

GOOD = bytes.fromhex(GOLDEN["AuditRecord"])
AUDIT_FP = GOOD[2:HEADER_SIZE]


def _audit(body_hex: str) -> bytes:
    return MAGIC + AUDIT_FP + bytes.fromhex(body_hex)


DECODE_ERRORS = [
    pytest.param(b"", "too short", id="empty"),
    pytest.param(GOOD[:9], "too short", id="header-cut-at-9-bytes"),
    pytest.param(b"\xc3\x02" + GOOD[2:], "bad magic c3 02", id="bad-magic"),
    pytest.param(b'{"audit_id": "a", "x": 1}', "bad magic 7b 22", id="json-not-avro"),
    pytest.param(
        MAGIC + bytes.fromhex("0123456789abcdef") + GOOD[HEADER_SIZE:],
        "unknown schema fingerprint 0123456789abcdef.*newer than this reader.*Upgrade",
        id="unknown-fingerprint",
    ),
    pytest.param(
        MAGIC + AUDIT_FP[::-1] + GOOD[HEADER_SIZE:],
        "unknown schema fingerprint",
        id="big-endian-fingerprint",
    ),
    pytest.param(GOOD[:-5], "AuditRecord body .* ends before the record", id="truncated-body"),
    pytest.param(GOOD[:HEADER_SIZE], "corrupt deskstream.AuditRecord body", id="header-only"),
    pytest.param(GOOD + b"\x00", r"1 unexpected byte\(s\) after the record", id="trailing-bytes"),
    pytest.param(_audit("02610a"), "corrupt", id="bad-union-index"),
    pytest.param(_audit("04ff61"), "corrupt", id="invalid-utf8"),
    pytest.param(_audit("ffffffffffffffffffff01"), "corrupt", id="varint-overflow"),
]


@pytest.mark.parametrize(("data", "message"), DECODE_ERRORS)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(SchemaError, match=message) as caught:
        decode(data)
    if "corrupt" in message:
        assert caught.value.__cause__ is not None, "the fastavro error should be chained"


def test_an_int_beyond_32_bits_is_refused_on_decode() -> None:
    # The wire has no bound on a varint; the model's Int32 does. The reader builds models
    # without pydantic's validation (schemas._convert), so it checks this bound itself.
    example = EXAMPLES["WriteResult"]
    entry = get_registry().entry_for(example.avro_name)
    datum = to_datum_for(entry)(example)
    datum["api_calls"] = 2**40  # fastavro's writer alone writes it
    data = _write(entry, MAGIC + entry.fingerprint, datum, strict=False)
    with pytest.raises(SchemaError, match=r"WriteResult\.api_calls holds 1099511627776, outside"):
        decode(data)


def test_decode_as_refuses_another_message_type_before_reading_the_body() -> None:
    corrupt_audit = GOOD[:-5]
    with pytest.raises(SchemaError, match=r"expected a deskstream\.Envelope message, got .*Audit"):
        decode_as(corrupt_audit, Envelope)


def test_decode_as_returns_the_typed_model() -> None:
    example = EXAMPLES["SyncCommand"]
    decoded: SyncCommand = decode_as(encode(example), SyncCommand)
    assert decoded == example


def test_decode_dict_gives_the_name_and_fastavro_notation() -> None:
    name, datum = decode_dict(encode(EXAMPLES["Envelope-message"]))
    assert name == "deskstream.Envelope"
    assert datum["data"][0] == "deskstream.Message"
    assert datum["source"]["platform"] == "zendesk"


def _partial(**fields: object) -> dict[str, Any]:
    # Typed as Any on purpose: these records are invalid, which is the point of the test.
    return fields


ENCODE_ERRORS = [
    pytest.param(
        Actor(kind=ActorKind.AI), "deskstream.Actor is not a top-level message", id="not-top-level"
    ),
    pytest.param(
        WriteResult.model_construct(**{**dict(EXAMPLES["WriteResult"]), "latency_ms": "fast"}),
        "field deskstream.WriteResult.latency_ms holds 'fast'",
        id="wrong-type-behind-pydantics-back",
    ),
    pytest.param(
        Envelope.model_construct(**{**dict(EXAMPLES["Envelope-case"]), "source": {"x": 1}}),
        "cannot encode deskstream.Envelope: AttributeError",
        id="dict-where-a-record-belongs",
    ),
    pytest.param(
        Envelope.model_construct(**_partial(event_id="e")),
        "cannot encode deskstream.Envelope: KeyError: 'source'",
        id="required-field-missing",
    ),
    pytest.param(
        Envelope.model_construct(**{**dict(EXAMPLES["Envelope-case"]), "data": Actor(kind="ai")}),
        "field deskstream.Envelope.data: a Actor fits none of its union branches",
        id="union-branch-not-in-schema",
    ),
]


@pytest.mark.parametrize(("record", "message"), ENCODE_ERRORS)
def test_encode_errors(record: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        encode(record)  # type: ignore[arg-type]


def test_encode_dict_round_trips_and_validates_every_field() -> None:
    _, datum = decode_dict(GOOD)
    assert encode_dict("deskstream.AuditRecord", datum) == GOOD
    with pytest.raises(SchemaError, match=r"field deskstream.AuditRecord.stage holds 7"):
        encode_dict("deskstream.AuditRecord", {**datum, "stage": 7})
    command = decode_dict(bytes.fromhex(GOLDEN["SyncCommand"]))[1]
    # fastavro alone would write 2**40 into an Avro int without complaint.
    with pytest.raises(SchemaError, match=r"SyncCommand\.attempt holds 1099511627776"):
        encode_dict("deskstream.SyncCommand", {**command, "attempt": 2**40})
    with pytest.raises(SchemaError, match="not a top-level message"):
        encode_dict("deskstream.Case", {})


def test_models_refuse_values_avro_cannot_hold() -> None:
    with pytest.raises(ValidationError, match="attempt"):
        SyncCommand(**{**dict(EXAMPLES["SyncCommand"]), "attempt": 2**31})
    with pytest.raises(ValidationError, match="timezone"):
        AuditRecord(**{**dict(EXAMPLES["AuditRecord"]), "at": "2025-01-01T00:00:00"})


def test_speed(capsys: pytest.CaptureFixture[str]) -> None:
    # Not a gate (machines differ, and timings belong to bench/): the figures in the log.
    example = EXAMPLES["Envelope-case"]
    data = encode(example)
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        encode(example)
    middle = time.perf_counter()
    for _ in range(rounds):
        decode(data)
    end = time.perf_counter()
    encode_us = (middle - start) / rounds * 1e6
    decode_us = (end - middle) / rounds * 1e6
    with capsys.disabled():
        print(
            f"\nEnvelope ({len(data)} bytes): encode {encode_us:.1f} us, decode {decode_us:.1f} us"
        )
    assert decode(data) == example


class _Left(AvroRecord):
    avro_name: ClassVar[str] = "test.Left"
    value: str


class _Right(AvroRecord):
    avro_name: ClassVar[str] = "test.Right"
    value: str


class _Holder(AvroRecord):
    avro_name: ClassVar[str] = "test.Holder"
    item: _Left | _Right | None = None


def test_union_branch_is_exact_even_when_records_look_alike(tmp_path: Path) -> None:
    # Left and Right have the same shape, so a writer that guessed the branch from the dict
    # would pick Left for both; the codec names the branch instead.
    def record(name: str, fields: list[dict[str, object]]) -> dict[str, object]:
        return {"type": "record", "name": name, "namespace": "test", "fields": fields}

    files = {
        "Left": record("Left", [{"name": "value", "type": "string"}]),
        "Right": record("Right", [{"name": "value", "type": "string"}]),
        "Holder": record(
            "Holder", [{"name": "item", "type": ["null", "Left", "Right"], "default": None}]
        ),
    }
    for name, schema in files.items():
        (tmp_path / f"test.{name}.avsc").write_text(json.dumps(schema))
    codec = AvroCodec(SchemaRegistry((_Holder,), schemas_dir=tmp_path, released_dir=tmp_path))
    data = codec.encode(_Holder(item=_Right(value="r")))
    assert data[HEADER_SIZE:] == b"\x04\x02r"  # branch 2 (zig-zag 4), then "r"
    decoded = codec.decode(data)
    assert isinstance(decoded, _Holder)
    assert type(decoded.item) is _Right


def test_timestamps_in_any_zone_are_written_as_utc_micros() -> None:
    utc = EXAMPLES["AuditRecord"]
    assert isinstance(utc, AuditRecord)
    madrid = utc.at.astimezone(timezone(timedelta(hours=2)))
    shifted = AuditRecord(**{**dict(utc), "at": madrid})
    assert encode(shifted) == encode(utc)
    assert decode(encode(shifted)) == utc
    assert shifted.at.tzinfo is UTC
