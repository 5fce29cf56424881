"""The shipped schemas, parsed once, indexed by name and by CRC-64-AVRO fingerprint.

Layout on disk:

    schemas/deskstream.<Name>.avsc              current schemas, one file per named type
    schemas/released/<version>/*.avsc           frozen snapshots of each released version

The current schema of each top-level message is what we write. A message is read with the
writer schema its fingerprint names: the current one, or a released one that differs from it
(data written by an older producer, resolved into the current schema by Avro's rules). A
fingerprint that matches none of them came from a producer newer than this reader.

The fingerprint is computed here (``crc64_avro``) rather than taken from fastavro, because the
wire format depends on its exact byte order: the Avro spec and Java's ``BinaryMessageEncoder``
write the 64-bit value little-endian, and the tests pin it against the spec's test vectors.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro.schema import load_schema, to_parsing_canonical_form

from schemas.errors import SchemaError
from schemas.models import TOP_LEVEL_MODELS, AvroRecord

__all__ = [
    "RELEASED_DIR",
    "SCHEMAS_DIR",
    "SchemaEntry",
    "SchemaRegistry",
    "crc64_avro",
    "get_registry",
    "load_parsed",
    "schema_fingerprint",
]

SCHEMAS_DIR = Path(__file__).resolve().parent
RELEASED_DIR = SCHEMAS_DIR / "released"

#: CRC-64-AVRO: the Rabin fingerprint the Avro spec defines, seeded with its EMPTY value.
_EMPTY = 0xC15D213AA4D7A795


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _crc_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO of ``data`` as an unsigned 64-bit integer (the spec's ``fingerprint64``)."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def schema_fingerprint(parsed: Any) -> bytes:
    """The 8 bytes that follow the magic: CRC-64-AVRO of the Parsing Canonical Form, LE."""
    return crc64_avro(to_parsing_canonical_form(parsed).encode()).to_bytes(8, "little")


@dataclass(frozen=True, slots=True, eq=False)
class SchemaEntry:
    """One writer schema of one top-level message (hashed by identity: one per registry)."""

    name: str
    #: "current", or the released version folder it came from ("v1", ...).
    version: str
    #: fastavro's parsed form, reused for every message (parsing is the expensive part).
    parsed: Any
    canonical_form: str
    #: 8 bytes, little-endian, exactly as they follow the magic on the wire.
    fingerprint: bytes
    model: type[AvroRecord]
    #: The schema to resolve into when reading; None when this entry is the current schema.
    reader: Any


def load_parsed(folder: Path, name: str) -> Any:
    """Parse ``<folder>/<name>.avsc``, pulling referenced named types from sibling files."""
    path = folder / f"{name}.avsc"
    try:
        return load_schema(str(path))
    except Exception as exc:
        # fastavro raises a mix of OSError, JSON errors, SchemaParseException and UnknownType.
        raise SchemaError(
            f"cannot load Avro schema {name} from {folder}: {exc}; check that every type it "
            f"names has its own <namespace>.<Name>.avsc file there"
        ) from exc


class SchemaRegistry:
    """Top-level schemas by name (current) and by fingerprint (current and released)."""

    def __init__(
        self,
        models: tuple[type[AvroRecord], ...] = TOP_LEVEL_MODELS,
        *,
        schemas_dir: Path = SCHEMAS_DIR,
        released_dir: Path = RELEASED_DIR,
    ) -> None:
        self._current: dict[str, SchemaEntry] = {}
        self._by_fingerprint: dict[bytes, SchemaEntry] = {}
        for model in models:
            entry = self._entry(schemas_dir, model, "current", reader=None)
            self._current[entry.name] = entry
            self._by_fingerprint[entry.fingerprint] = entry
        released = sorted(released_dir.glob("v*/")) if released_dir.is_dir() else []
        for folder in released:
            for model in models:
                if not (folder / f"{model.avro_name}.avsc").is_file():
                    continue  # a message type added after that release
                current = self._current[model.avro_name]
                old = self._entry(folder, model, folder.name, reader=current.parsed)
                # Unchanged since that release: one entry, read without resolution (faster).
                self._by_fingerprint.setdefault(old.fingerprint, old)

    @staticmethod
    def _entry(folder: Path, model: type[AvroRecord], version: str, reader: Any) -> SchemaEntry:
        parsed = load_parsed(folder, model.avro_name)
        canonical = to_parsing_canonical_form(parsed)
        fingerprint = schema_fingerprint(parsed)
        return SchemaEntry(model.avro_name, version, parsed, canonical, fingerprint, model, reader)

    @property
    def current(self) -> Mapping[str, SchemaEntry]:
        """The schema each top-level message is written with, by Avro full name."""
        return self._current

    @property
    def by_fingerprint(self) -> Mapping[bytes, SchemaEntry]:
        """Every writer schema this reader understands, by its 8-byte fingerprint."""
        return self._by_fingerprint

    def entry_for(self, name: str) -> SchemaEntry:
        try:
            return self._current[name]
        except KeyError:
            known = ", ".join(sorted(self._current))
            raise SchemaError(
                f"{name} is not a top-level message; top-level messages are: {known}"
            ) from None


@functools.cache
def get_registry() -> SchemaRegistry:
    """The process-wide registry of shipped schemas, loaded on first use."""
    return SchemaRegistry()
