"""Avro single-object encoding of the canonical messages.

Wire format (Avro spec, "Single-object encoding"; Java's ``BinaryMessageEncoder``):

    C3 01 | CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form (8 bytes, LE) | body

so any Avro library decodes a message from the published ``.avsc`` files alone.

    encode(model) -> bytes              a top-level model (Envelope, SyncCommand, ...)
    decode(data) -> model               whichever top-level model the fingerprint names
    decode_as(data, Envelope)           the same, refusing any other message type
    encode_dict(name, datum) / decode_dict(data)   fastavro's dict notation, for tools
    writer_schema_id(data) -> str       which schema wrote a message (exports record it)

The functions use the shipped schemas (``schemas.registry.get_registry()``); ``AvroCodec`` takes
a registry of its own (tests, tools that read another schemas folder).

Every failure is an ``schemas.errors.SchemaError`` whose message names the problem (too short, bad
magic, unknown fingerprint, corrupt body, which field does not fit); the fastavro exception, if
any, is chained as ``__cause__`` and never escapes.

Speed: schemas are parsed once (``schemas.registry``), model <-> datum conversion is compiled
once per schema (``schemas._convert``), and the body goes through fastavro's compiled
``schemaless_writer``/``schemaless_reader``. Measured on the 2-core dev machine (CPU time,
best of 7 x 5,000) for the fully populated Envelope examples of ``tests/schemas/examples.py``:
12-45 us to encode and 19-45 us to decode (a delete; one carrying a Case), about two thirds
of it inside fastavro. ``tests/schemas/test_codec.py::test_speed`` prints the current figure.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from io import BytesIO
from typing import Any, TypeVar, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate
from pydantic import ValidationError

from schemas._convert import to_datum_for, to_model_for
from schemas.errors import SchemaError
from schemas.models import AvroRecord, TopLevelModel
from schemas.registry import SchemaEntry, SchemaRegistry, get_registry

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "AvroCodec",
    "decode",
    "decode_as",
    "decode_dict",
    "encode",
    "encode_dict",
    "fingerprint_of",
    "message_name",
    "writer_schema_id",
]

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10  # magic (2) + fingerprint (8)

M = TypeVar("M", bound=AvroRecord)


class AvroCodec:
    """Single-object encoding against one registry of schemas."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def encode(self, record: AvroRecord) -> bytes:
        """Single-object encoding of a top-level model (Envelope, SyncCommand, ...)."""
        name = getattr(type(record), "avro_name", type(record).__name__)
        entry = self.registry.entry_for(name)
        if type(record) is not entry.model:
            raise SchemaError(f"expected a {entry.model.__name__}, got {type(record).__name__}")
        try:
            datum = to_datum_for(entry)(record)
        except (KeyError, AttributeError, TypeError) as exc:
            # Only reachable for a model built around pydantic (model_construct): a missing
            # field, or a plain dict where a nested record model belongs.
            raise SchemaError(
                f"cannot encode {entry.name}: {type(exc).__name__}: {exc} (was it built "
                f"with model_construct?)"
            ) from exc
        return _write(entry, datum, strict=False)

    def encode_dict(self, name: str, datum: Mapping[str, Any]) -> bytes:
        """Single-object encoding of a dict in fastavro's notation, validated in full.

        Unlike ``encode`` there is no pydantic model in front, and fastavro's writer alone
        would, e.g., silently write 2**40 into an Avro ``int``.
        """
        entry = self.registry.entry_for(name)
        try:
            validate(datum, entry.parsed, raise_errors=True)
        except Exception as exc:
            raise SchemaError(f"cannot encode {entry.name}: {_explain(entry, datum, exc)}") from exc
        return _write(entry, datum, strict=True)

    def decode(self, data: bytes) -> TopLevelModel:
        """The top-level model a single-object message holds, whichever it is."""
        return cast(TopLevelModel, _decode(self._entry_of(data), data))

    def decode_as(self, data: bytes, model: type[M]) -> M:
        """Like ``decode``, but the message must be a ``model`` (checked before the body)."""
        entry = self._entry_of(data)
        if entry.model is not model:
            raise SchemaError(f"expected a {model.avro_name} message, got {entry.name}")
        return cast(M, _decode(entry, data))

    def decode_dict(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(Avro full name, datum in fastavro's notation) of a single-object message."""
        entry = self._entry_of(data)
        return entry.name, cast(dict[str, Any], _read(entry, data))

    def message_name(self, data: bytes) -> str:
        """The Avro full name a message's fingerprint names, without reading the body."""
        return self._entry_of(data).name

    def writer_schema_id(self, data: bytes) -> str:
        """The identity of the schema a message was written with, as text: here the
        fingerprint in hex (a registry's schema id where messages carry one)."""
        return self._entry_of(data).fingerprint.hex()

    def fingerprint_of(self, model: type[AvroRecord] | str) -> bytes:
        """The 8 fingerprint bytes a top-level message is written with."""
        return self.registry.entry_for(
            model if isinstance(model, str) else model.avro_name
        ).fingerprint

    def _entry_of(self, data: bytes) -> SchemaEntry:
        if len(data) < HEADER_SIZE:
            raise SchemaError(
                f"message too short for Avro single-object encoding: {len(data)} bytes, need "
                f"at least {HEADER_SIZE} (2 magic + 8 fingerprint)"
            )
        if data[:2] != MAGIC:
            raise SchemaError(
                f"bad magic {bytes(data[:2]).hex(' ')}: not an Avro single-object message "
                f"(expected c3 01); was it written by another serializer?"
            )
        fingerprint = bytes(data[2:HEADER_SIZE])
        entry = self.registry.by_fingerprint.get(fingerprint)
        if entry is None:
            raise SchemaError(
                f"unknown schema fingerprint {fingerprint.hex()} (CRC-64-AVRO, little-endian): "
                f"no shipped schema has it, so the producer is probably newer than this reader. "
                f"Upgrade this service, or check that its schemas folder holds the producer's "
                f".avsc files"
            )
        return entry


def _write(entry: SchemaEntry, datum: Any, *, strict: bool) -> bytes:
    buffer = BytesIO()
    buffer.write(MAGIC)
    buffer.write(entry.fingerprint)
    try:
        schemaless_writer(buffer, entry.parsed, datum, strict_allow_default=strict)
    except Exception as exc:
        # fastavro raises TypeError/ValueError/OverflowError/... and says "an integer is
        # required on field x on field y"; its validator names the field path, so it is asked
        # once something went wrong (never on the fast path).
        raise SchemaError(f"cannot encode {entry.name}: {_explain(entry, datum, exc)}") from exc
    return buffer.getvalue()


def _explain(entry: SchemaEntry, datum: Any, exc: Exception) -> str:
    try:
        validate(datum, entry.parsed, raise_errors=True)
    except Exception as detail:
        errors = getattr(detail, "errors", None)
        if errors:
            return "; ".join(
                f"field {e.field} holds {e.datum!r}, which does not fit {e.schema}" for e in errors
            )
    return f"{type(exc).__name__}: {exc}"


def _read(entry: SchemaEntry, data: bytes) -> Any:
    buffer = BytesIO(data)
    buffer.seek(HEADER_SIZE)
    try:
        datum = schemaless_reader(
            buffer,
            entry.parsed,
            entry.reader,
            return_record_name=True,
            return_record_name_override=True,
        )
    except Exception as exc:
        # Truncation surfaces as EOFError, garbage as ValueError/IndexError/UnicodeDecodeError.
        what = "it ends before the record does" if isinstance(exc, EOFError) else ""
        raise SchemaError(
            f"corrupt {entry.name} body ({len(data) - HEADER_SIZE} bytes after the header): "
            f"{what or type(exc).__name__}{': ' if str(exc) else ''}{exc}; the message was "
            f"cut short or damaged after it was written"
        ) from exc
    if buffer.tell() != len(data):
        raise SchemaError(
            f"corrupt {entry.name} body: {len(data) - buffer.tell()} unexpected byte(s) after "
            f"the record"
        )
    return datum


def _decode(entry: SchemaEntry, data: bytes) -> AvroRecord:
    datum = _read(entry, data)
    try:
        return to_model_for(entry)(datum)
    except ValidationError as exc:
        raise SchemaError(f"decoded {entry.name} does not fit its Python model: {exc}") from exc


@functools.cache
def _default() -> AvroCodec:
    return AvroCodec(get_registry())


def encode(record: AvroRecord) -> bytes:
    """Single-object encoding of a top-level model (Envelope, SyncCommand, ...)."""
    return _default().encode(record)


def encode_dict(name: str, datum: Mapping[str, Any]) -> bytes:
    """Single-object encoding of a dict in fastavro's notation, validated in full."""
    return _default().encode_dict(name, datum)


def decode(data: bytes) -> TopLevelModel:
    """The top-level model a single-object message holds, whichever it is."""
    return _default().decode(data)


def decode_as(data: bytes, model: type[M]) -> M:
    """Like ``decode``, but the message must be a ``model`` (checked before the body)."""
    return _default().decode_as(data, model)


def decode_dict(data: bytes) -> tuple[str, dict[str, Any]]:
    """(Avro full name, datum in fastavro's notation) of a single-object message."""
    return _default().decode_dict(data)


def message_name(data: bytes) -> str:
    """The Avro full name a message's fingerprint names, without reading the body."""
    return _default().message_name(data)


def fingerprint_of(model: type[AvroRecord] | str) -> bytes:
    """The 8 fingerprint bytes a top-level message is written with."""
    return _default().fingerprint_of(model)


def writer_schema_id(data: bytes) -> str:
    """The identity of the schema ``data`` was written with, as text (the fingerprint in hex
    for single-object messages)."""
    return _default().writer_schema_id(data)
