"""Avro encoding of the canonical messages, in two framings.

Confluent framing (what Kafka Connect, ksqlDB, Flink, ClickHouse and confluent-kafka read),
written once schema ids are installed (``use_schema_ids``, done by ``app.schema_registry`` when
a registry is configured):

    00 | schema id (4 bytes, big-endian, from the registry) | body

Avro single-object encoding (Avro spec; Java's ``BinaryMessageEncoder``), written without a
registry, and the only format before it; still read, so records already on a topic stay
readable after an upgrade:

    C3 01 | CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form (8 bytes, LE) | body

The decoder tells them apart by the first byte (``00`` or ``C3``).

    encode(model) -> bytes              a top-level model (Envelope, SyncCommand, ...)
    decode(data) -> model               whichever top-level model the header names
    decode_as(data, Envelope)           the same, refusing any other message type
    envelope_source(data)               an Envelope's source read from its front (routing)
    encode_dict(name, datum) / decode_dict(data)   fastavro's dict notation, for tools
    writer_schema_id(data) -> str       which schema wrote a message (exports record it)

The functions use the shipped schemas (``schemas.registry.get_registry()``) and the ids
installed with ``use_schema_ids``; ``AvroCodec`` takes a registry and ids of its own (tests,
tools that read another schemas folder).

Every failure is an ``schemas.errors.SchemaError`` whose message names the problem (too short,
bad magic, unknown fingerprint or id, corrupt body, which field does not fit); the fastavro
exception, if any, is chained as ``__cause__`` and never escapes.

Speed: schemas are parsed once (``schemas.registry``), model <-> datum conversion is compiled
once per schema (``schemas._convert``; decoded models are built without a second validation
in pydantic, the Avro read being the schema check). The body is written by a writer generated
once per schema from the models (``schemas._compiled_writer``: fastavro's bytes, about a third
of its time) and read by a reader generated once per schema into the models
(``schemas._compiled_reader``: about 0.6 of fastavro's read and conversion); whatever either
does not expect is written or read, or refused with the reason, by fastavro's
``schemaless_writer`` and ``schemaless_reader`` as before. Measured on the 2-core dev machine
(CPU time, best of 7 x 5,000) for the fully populated Envelope examples of
``tests/schemas/examples.py``, before the generated writers and readers: 12-45 us to encode
and 17-40 us to decode (a delete; one carrying a Case), two thirds to nine tenths of it
inside fastavro. ``tests/schemas/test_codec.py::test_speed`` prints the current figures,
``tests/schemas/test_compiled_writer.py::test_speed`` both writers' and
``tests/schemas/test_compiled_reader.py::test_speed`` both readers'.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from io import BytesIO
from typing import Any, TypeVar, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate

from schemas._compiled_reader import Reader, compile_reader
from schemas._compiled_reader import Unexpected as ReaderUnexpected
from schemas._compiled_writer import Unsupported, Writer, compile_writer
from schemas._convert import model_classes, to_datum_for, to_model_for
from schemas._front_reader import EnvelopeSource, FrontReader, compile_front_reader
from schemas.errors import SchemaError
from schemas.models import AvroRecord, Envelope, TopLevelModel
from schemas.registry import SchemaEntry, SchemaRegistry, get_registry
from schemas.schema_ids import SchemaIds

__all__ = [
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
]

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10  # magic (2) + fingerprint (8)
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_SIZE = 5  # magic (1) + schema id (4)

M = TypeVar("M", bound=AvroRecord)


class AvroCodec:
    """Encoding against one set of shipped schemas: Confluent framing with ``ids``, the
    single-object encoding without; both are read."""

    def __init__(self, registry: SchemaRegistry, ids: SchemaIds | None = None) -> None:
        self.registry = registry
        self.ids = ids

    def _header(self, entry: SchemaEntry) -> bytes:
        ids = self.ids
        return MAGIC + entry.fingerprint if ids is None else ids.header(entry.name)

    def encode(self, record: AvroRecord) -> bytes:
        """A top-level model (Envelope, SyncCommand, ...) in this codec's framing."""
        name = getattr(type(record), "avro_name", type(record).__name__)
        entry = self.registry.entry_for(name)
        if type(record) is not entry.model:
            raise SchemaError(f"expected a {entry.model.__name__}, got {type(record).__name__}")
        writer = _compiled_writer_for(entry)
        if writer is not None:
            try:
                return writer(record, self._header(entry))
            except Exception:  # noqa: S110  (fastavro says what is wrong, or writes it)
                pass  # a value the compiled writer does not expect: fastavro's turn
        try:
            datum = to_datum_for(entry)(record)
        except (KeyError, AttributeError, TypeError) as exc:
            # Only reachable for a model built around pydantic (model_construct): a missing
            # field, or a plain dict where a nested record model belongs.
            raise SchemaError(
                f"cannot encode {entry.name}: {type(exc).__name__}: {exc} (was it built "
                f"with model_construct?)"
            ) from exc
        return _write(entry, self._header(entry), datum, strict=False)

    def encode_dict(self, name: str, datum: Mapping[str, Any]) -> bytes:
        """A dict in fastavro's notation, validated in full, in this codec's framing.

        Unlike ``encode`` there is no pydantic model in front, and fastavro's writer alone
        would, e.g., silently write 2**40 into an Avro ``int``.
        """
        entry = self.registry.entry_for(name)
        try:
            validate(datum, entry.parsed, raise_errors=True)
        except Exception as exc:
            raise SchemaError(f"cannot encode {entry.name}: {_explain(entry, datum, exc)}") from exc
        return _write(entry, self._header(entry), datum, strict=True)

    def decode(self, data: bytes) -> TopLevelModel:
        """The top-level model a message holds, whichever it is."""
        entry, start = self._entry_of(data)
        return cast(TopLevelModel, _decode(entry, data, start))

    def decode_as(self, data: bytes, model: type[M]) -> M:
        """Like ``decode``, but the message must be a ``model`` (checked before the body)."""
        entry, start = self._entry_of(data)
        if entry.model is not model:
            raise SchemaError(f"expected a {model.avro_name} message, got {entry.name}")
        return cast(M, _decode(entry, data, start))

    def envelope_source(self, data: bytes) -> EnvelopeSource | None:
        """The source at the front of an Envelope message, read without the rest of it
        (``schemas._front_reader``); None when it cannot be read that way: another message
        type, a writer schema that begins otherwise, bytes the front reader does not expect.
        ``decode_as(data, Envelope)`` then reads the message or says what is wrong."""
        try:
            entry, start = self._entry_of(data)
        except SchemaError:
            return None
        reader = _front_reader_for(entry) if entry.model is Envelope else None
        if reader is None or type(data) is not bytes:
            return None
        try:
            return reader(data, start)
        except _UNEXPECTED:
            return None

    def decode_dict(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(Avro full name, datum in fastavro's notation) of a message."""
        entry, start = self._entry_of(data)
        return entry.name, cast(dict[str, Any], _read(entry, data, start))

    def message_name(self, data: bytes) -> str:
        """The Avro full name a message's header names, without reading the body."""
        return self._entry_of(data)[0].name

    def writer_schema_id(self, data: bytes) -> str:
        """The identity of the schema a message was written with, as text: the registry's
        schema id (decimal) for the Confluent framing, the fingerprint in hex for a
        single-object message."""
        if data[:1] == CONFLUENT_MAGIC and len(data) >= CONFLUENT_HEADER_SIZE:
            return str(_schema_id(data))
        return self._entry_of(data)[0].fingerprint.hex()

    def fingerprint_of(self, model: type[AvroRecord] | str) -> bytes:
        """The 8 fingerprint bytes a top-level message is written with."""
        return self.registry.entry_for(
            model if isinstance(model, str) else model.avro_name
        ).fingerprint

    def _entry_of(self, data: bytes) -> tuple[SchemaEntry, int]:
        """The writer schema the header names, and where the body starts."""
        if data[:1] == CONFLUENT_MAGIC:
            return self._confluent_entry(data), CONFLUENT_HEADER_SIZE
        return self._single_object_entry(data), HEADER_SIZE

    def _confluent_entry(self, data: bytes) -> SchemaEntry:
        if len(data) < CONFLUENT_HEADER_SIZE:
            raise SchemaError(
                f"message too short for the Confluent framing: {len(data)} bytes, need at "
                f"least {CONFLUENT_HEADER_SIZE} (00 + 4-byte schema id)"
            )
        schema_id = _schema_id(data)
        if self.ids is None:
            raise SchemaError(
                f"message framed with schema id {schema_id} (Confluent framing), but this "
                "reader has no schema registry; set DESKSTREAM_SCHEMA_REGISTRY_URL to the "
                "registry its producer used"
            )
        return self.ids.entry(schema_id)

    def _single_object_entry(self, data: bytes) -> SchemaEntry:
        if len(data) < HEADER_SIZE:
            raise SchemaError(
                f"message too short for Avro single-object encoding: {len(data)} bytes, need "
                f"at least {HEADER_SIZE} (2 magic + 8 fingerprint)"
            )
        if data[:2] != MAGIC:
            raise SchemaError(
                f"bad magic {bytes(data[:2]).hex(' ')}: neither the Confluent framing (00 and "
                f"a schema id) nor an Avro single-object message (c3 01); was it written by "
                f"another serializer?"
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


@functools.cache
def _compiled_writer_for(entry: SchemaEntry) -> Writer | None:
    """The generated writer of ``entry`` (``schemas._compiled_writer``), None when its schema
    uses something the generator does not write."""
    try:
        return compile_writer(entry.parsed, model_classes())
    except Unsupported:
        return None


def _write(entry: SchemaEntry, header: bytes, datum: Any, *, strict: bool) -> bytes:
    buffer = BytesIO()
    buffer.write(header)
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


def _read(entry: SchemaEntry, data: bytes, start: int) -> Any:
    buffer = BytesIO(data)
    buffer.seek(start)
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
            f"corrupt {entry.name} body ({len(data) - start} bytes after the header): "
            f"{what or type(exc).__name__}{': ' if str(exc) else ''}{exc}; the message was "
            f"cut short or damaged after it was written"
        ) from exc
    if buffer.tell() != len(data):
        raise SchemaError(
            f"corrupt {entry.name} body: {len(data) - buffer.tell()} unexpected byte(s) after "
            f"the record"
        )
    return datum


@functools.cache
def _compiled_reader_for(entry: SchemaEntry) -> Reader | None:
    """The generated reader of ``entry`` (``schemas._compiled_reader``), None when its schema
    uses something the generator does not read, or when its messages are resolved into the
    current schema as they are read (an older released schema: fastavro does that)."""
    if entry.reader is not None:
        return None
    try:
        return compile_reader(entry.parsed, model_classes())
    except (Unsupported, SchemaError):
        return None


@functools.cache
def _front_reader_for(entry: SchemaEntry) -> FrontReader | None:
    """The front reader of the Envelope writer schema ``entry``, None when its fields do
    not begin as the front reader expects."""
    return compile_front_reader(entry.parsed)


#: what the compiled reader raises on bytes it does not expect (fastavro then reads them)
_UNEXPECTED = (ReaderUnexpected, IndexError, struct.error, UnicodeDecodeError, OverflowError)


def _decode(entry: SchemaEntry, data: bytes, start: int) -> AvroRecord:
    compiled = _compiled_reader_for(entry)
    if compiled is not None and type(data) is bytes:  # (fastavro reads any buffer)
        try:
            model, end = compiled(data, start)
        except _UNEXPECTED:
            pass  # fastavro reads it, or raises the SchemaError that says what is wrong
        else:
            if end == len(data):
                return model
    return _decode_with_fastavro(entry, data, start)


def _decode_with_fastavro(entry: SchemaEntry, data: bytes, start: int) -> AvroRecord:
    """fastavro's read, then the model: every message the compiled reader does not read, and
    every error message."""
    datum = _read(entry, data, start)
    try:
        return to_model_for(entry)(datum)
    except SchemaError as exc:
        raise SchemaError(f"decoded {entry.name} does not fit its Python model: {exc}") from exc


@functools.cache
def _default() -> AvroCodec:
    return AvroCodec(get_registry())


def compile_codecs() -> int:
    """Generate the writer and reader of every shipped schema now (a worker does it as it
    starts): the first message of each type would otherwise wait for them, up to 16 ms for
    an Envelope's reader. Returns how many were generated."""
    made = 0
    for entry in get_registry().current.values():
        made += _compiled_writer_for(entry) is not None
        made += _compiled_reader_for(entry) is not None
    return made


def use_schema_ids(ids: SchemaIds | None) -> None:
    """Write the Confluent framing with ``ids`` from now on (None: the single-object
    encoding again); either framing is read. Called once at start-up."""
    _default().ids = ids


def schema_ids() -> SchemaIds | None:
    """The ids installed with ``use_schema_ids``, if any."""
    return _default().ids


def encode(record: AvroRecord) -> bytes:
    """A top-level model (Envelope, SyncCommand, ...), framed as installed."""
    return _default().encode(record)


def encode_dict(name: str, datum: Mapping[str, Any]) -> bytes:
    """A dict in fastavro's notation, validated in full, framed as installed."""
    return _default().encode_dict(name, datum)


def decode(data: bytes) -> TopLevelModel:
    """The top-level model a message holds, whichever it is."""
    return _default().decode(data)


def decode_as(data: bytes, model: type[M]) -> M:
    """Like ``decode``, but the message must be a ``model`` (checked before the body)."""
    return _default().decode_as(data, model)


def decode_dict(data: bytes) -> tuple[str, dict[str, Any]]:
    """(Avro full name, datum in fastavro's notation) of a message."""
    return _default().decode_dict(data)


def envelope_source(data: bytes) -> EnvelopeSource | None:
    """The source at the front of an Envelope message, without the rest (None: decode it)."""
    return _default().envelope_source(data)


def message_name(data: bytes) -> str:
    """The Avro full name a message's header names, without reading the body."""
    return _default().message_name(data)


def fingerprint_of(model: type[AvroRecord] | str) -> bytes:
    """The 8 fingerprint bytes a top-level message is written with."""
    return _default().fingerprint_of(model)


def _schema_id(data: bytes) -> int:
    """The registry's schema id in a Confluent-framed header (the caller checked the length)."""
    return int.from_bytes(data[1:CONFLUENT_HEADER_SIZE], "big")


def writer_schema_id(data: bytes) -> str:
    """The identity of the schema ``data`` was written with, as text: the registry's schema id
    for the Confluent framing, the fingerprint in hex for a single-object message."""
    return _default().writer_schema_id(data)
