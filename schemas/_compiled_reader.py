"""Avro binary readers generated once per schema, building the record models directly.

fastavro's ``schemaless_reader`` walks the parsed schema for every message, dispatching each
value on its type name, and hands back dicts that ``schemas._convert`` then turns into models
(enum symbols into members, named union branches into their records): 32 µs of CPU for a sync
command on the 2-core machine, 25 of them in fastavro. The sync stage decodes every input it
reads (events, write results) and its sinks every command, so decoding was 8 % of a syncing
worker's CPU in a py-spy profile (``docs/performance.md``). The schemas are fixed once the
process starts, so this module writes, once per schema, the Python source of a function that
reads exactly that schema: field by field in schema order, one-byte varints (nearly every
length, count and index) inline, each record's model built from its values at once, as
``schemas._convert`` builds it (no second validation: the read is the schema check).

It is a fast path, not a second decoder with rules of its own. It reads what fastavro reads
into equal models (every example and generated messages of every top-level type in
``tests/schemas/test_compiled_reader.py``). Whatever it does not expect raises, and the codec
then reads the message through fastavro, which reads it or raises the ``SchemaError`` that
says what is wrong: a message cut short, bytes that are not UTF-8, an enum index or a union
branch out of range, a varint beyond 64 bits, a boolean byte other than 0 or 1, a timestamp
beyond the year 9999, an ``int`` beyond 32 bits. A schema using something the generator does
not know (``fixed``, a logical type other than ``timestamp-micros``) gets no compiled reader,
and a message written with an older schema, which fastavro resolves into the current one, is
always read by fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas._convert import PRIMITIVE_TYPES, enum_members, record_builder
from schemas._generated import SourceGenerator, Unsupported
from schemas.models import AvroRecord

__all__ = ["Reader", "Unexpected", "Unsupported", "compile_reader"]

#: reads one message's body (from the offset given) into its record model: the model and
#: the offset after it
Reader = Callable[[bytes, int], tuple[AvroRecord, int]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class Unexpected(Exception):
    """Bytes the compiled reader does not expect: fastavro reads (or refuses) them."""


def _unexpected(what: str) -> Any:
    raise Unexpected(what)


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro ``long`` of more than one byte at ``pos``: the value and the offset after it
    (a timestamp takes 8, a length over 63 two)."""
    byte = data[pos]  # IndexError past the end: the message was cut short
    n = byte & 0x7F
    shift = 7
    pos += 1
    while byte > 0x7F:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
    if shift > 70 or n >> 64:
        raise Unexpected("a varint beyond 64 bits")
    return (n >> 1) ^ -(n & 1), pos


_GLOBALS: dict[str, Any] = {
    "_long": _long,
    "_unexpected": _unexpected,
    "_double": struct.Struct("<d").unpack_from,
    "_float": struct.Struct("<f").unpack_from,
    "_EPOCH": _EPOCH,
    "_timedelta": timedelta,
    "_INT32_MIN": _INT32_MIN,
    "_INT32_MAX": _INT32_MAX,
}


class _Generator(SourceGenerator):
    """The source of one schema's reader: a function per named record, and constants."""

    prefix = "_r_"

    def record_lines(self, name: str, schema: Any) -> list[str]:
        model = self.models.get(schema["name"])
        if model is None:
            raise Unsupported(f"no model for record {schema['name']}")
        fields = [field["name"] for field in schema["fields"]]
        build = self.constant(record_builder(model, fields), "build")
        lines = [f"def {name}(data, pos, size):"]
        values = []
        for field in schema["fields"]:
            value = self.temp()
            lines.extend(self.read(field["type"], value, "    "))
            values.append(f"{field['name']!r}: {value}")
        lines.append(f"    return {build}({{{', '.join(values)}}}), pos")
        return lines

    def long(self, target: str, indent: str) -> Iterator[str]:
        """Statements reading an Avro ``long`` into ``target``: one byte inline, else
        ``_long``."""
        yield f"{indent}{target} = data[pos]"
        yield f"{indent}if {target} < 128:"
        yield f"{indent}    {target} = ({target} >> 1) ^ -({target} & 1)"
        yield f"{indent}    pos += 1"
        yield f"{indent}else:"
        yield f"{indent}    {target}, pos = _long(data, pos)"

    def read(self, schema: Any, value: str, indent: str) -> Iterator[str]:
        """Statements reading ``schema`` at ``pos`` into the local ``value``."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            yield from self.union(schema, value, indent)
        elif isinstance(schema, str):
            yield from self.primitive(schema, value, indent)
        elif schema.get("logicalType") == "timestamp-micros" and schema["type"] == "long":
            # fastavro's: the epoch plus a timedelta (OverflowError beyond year 9999)
            yield from self.long(value, indent)
            yield f"{indent}{value} = _EPOCH + _timedelta(microseconds={value})"
        elif "logicalType" in schema:
            raise Unsupported(f"logical type {schema['logicalType']!r}")
        elif schema["type"] == "record":
            yield f"{indent}{value}, pos = {self.record_function(schema)}(data, pos, size)"
        elif schema["type"] == "enum":
            members = self.constant(_members(schema), "enum")
            yield from self.long(value, indent)
            yield f"{indent}if {value} < 0: _unexpected('a negative enum index')"
            yield f"{indent}{value} = {members}[{value}]"
        elif schema["type"] in ("array", "map"):
            yield from self.blocks(schema, value, indent)
        elif schema["type"] in PRIMITIVE_TYPES:
            yield from self.primitive(schema["type"], value, indent)
        else:
            raise Unsupported(f"schema {schema!r}")

    def blocks(self, schema: Any, value: str, indent: str) -> Iterator[str]:
        """An array's or a map's blocks: a count, then its items (a negative count: its size
        in bytes follows), until a count of 0."""
        is_map = schema["type"] == "map"
        count, item = self.temp(), self.temp()
        inner = indent + "        "
        yield f"{indent}{value} = {'{}' if is_map else '[]'}"
        yield f"{indent}while True:"
        yield from self.long(count, indent + "    ")
        yield f"{indent}    if not {count}:"
        yield f"{indent}        break"
        yield f"{indent}    if {count} < 0:"
        yield f"{indent}        {count} = -{count}"
        yield from self.long(item, inner)  # the block's size in bytes, not needed
        yield f"{indent}    for _ in range({count}):"
        if is_map:
            key = self.temp()
            yield from self.primitive("string", key, inner)
            yield from self.read(schema["values"], item, inner)
            yield f"{inner}{value}[{key}] = {item}"
        else:
            yield from self.read(schema["items"], item, inner)
            yield f"{inner}{value}.append({item})"

    def primitive(self, kind: str, value: str, indent: str) -> Iterator[str]:
        if kind == "null":
            yield f"{indent}{value} = None"
        elif kind == "boolean":
            yield f"{indent}{value} = data[pos]"
            yield f"{indent}pos += 1"
            yield f"{indent}if {value} > 1: _unexpected('a boolean byte other than 0 or 1')"
            yield f"{indent}{value} = {value} == 1"
        elif kind == "long":
            yield from self.long(value, indent)
        elif kind == "int":
            yield from self.long(value, indent)
            yield f"{indent}if not _INT32_MIN <= {value} <= _INT32_MAX:"
            yield f"{indent}    _unexpected('an int beyond 32 bits')"
        elif kind in ("double", "float"):
            unpack, width = ("_double", 8) if kind == "double" else ("_float", 4)
            yield f"{indent}{value} = {unpack}(data, pos)[0]"
            yield f"{indent}pos += {width}"
        elif kind in ("string", "bytes"):
            end = self.temp()
            yield from self.long(end, indent)
            yield f"{indent}if {end} < 0: _unexpected('a negative length')"
            yield f"{indent}{end} += pos"
            yield f"{indent}if {end} > size: _unexpected('a length beyond the message')"
            decode = ".decode()" if kind == "string" else ""  # UnicodeDecodeError: fastavro's
            yield f"{indent}{value} = data[pos:{end}]{decode}"
            yield f"{indent}pos = {end}"
        elif kind in self.named:
            yield from self.read(self.named[kind], value, indent)
        else:
            raise Unsupported(f"type {kind!r}")

    def union(self, branches: list[Any], value: str, indent: str) -> Iterator[str]:
        index = self.temp()
        yield from self.long(index, indent)
        keyword = "if"
        for position, branch in enumerate(branches):
            yield f"{indent}{keyword} {index} == {position}:"
            yield from self.read(branch, value, indent + "    ")
            keyword = "elif"
        yield f"{indent}else:"
        yield f"{indent}    {value} = _unexpected('a union branch out of range')"


def _members(schema: Any) -> tuple[Any, ...]:
    """The ``StrEnum`` members of an Avro enum in symbol order."""
    cls, by_value = enum_members(schema)
    missing = [symbol for symbol in schema["symbols"] if symbol not in by_value]
    if missing:
        raise Unsupported(f"{cls.__name__} has no member for {missing}")
    return tuple(by_value[symbol] for symbol in schema["symbols"])


def compile_reader(parsed: Any, models: dict[str, type[AvroRecord]]) -> Reader:
    """The reader of the record schema ``parsed`` (fastavro's parsed form, its named types in
    ``__named_schemas``), building the models by Avro full name; ``Unsupported`` if the schema
    uses something the generator does not read."""
    read_top = _Generator(parsed, models).compile(parsed, _GLOBALS, "reader")

    def read(data: bytes, start: int) -> tuple[AvroRecord, int]:
        model: AvroRecord
        model, end = read_top(data, start, len(data))
        return model, end

    return read
