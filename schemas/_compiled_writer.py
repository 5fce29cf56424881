"""Avro binary writers generated once per schema, reading the record models directly.

fastavro's ``schemaless_writer`` walks the parsed schema for every message and picks the
branch of every union by trying each one in turn: 30-36 us of CPU for one of normalize's
events (an Envelope carrying a Case) on the 2-core machine, the largest single step of
normalising a delivery (``bench.normalize_work``). The schemas are fixed once the process
starts, so this module writes, once per schema, the Python source of a function that writes
exactly that schema from the models' ``__dict__``: field by field in schema order, a union's
branch chosen by the value's exact type (as ``schemas._convert`` names it for fastavro), small
lengths and enum indexes from precomputed bytes. About a third of fastavro's time for that
event (``tests/schemas/test_compiled_writer.py::test_speed`` prints both).

It is a fast path, not a second encoder with rules of its own. Its output is byte for byte
fastavro's (the golden bytes of every example, and generated models in the tests). Anything
it does not expect raises, and the codec then writes the message through fastavro, which
either writes it or raises the ``SchemaError`` that says what is wrong: a lone surrogate, a
value of the wrong type in a model built without validation, a naive timestamp, an integer
beyond 64 bits. A schema using something the generator does not know (``fixed``, a logical
type other than ``timestamp-micros``) gets no compiled writer at all.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from schemas._convert import PRIMITIVE_TYPES
from schemas._generated import SourceGenerator, Unsupported
from schemas.models import AvroRecord

__all__ = ["Unsupported", "Writer", "compile_writer", "zigzag"]

#: writes one record model (header first, then the body): the message's bytes
Writer = Callable[[AvroRecord, bytes], bytes]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
#: zig-zag varints of 0 .. _SMALL - 1, precomputed: lengths, counts and indexes are nearly all
_SMALL = 1024


class _Mismatch(Exception):
    """A value the compiled writer does not expect: fastavro writes (or refuses) it."""


def zigzag(n: int) -> bytes:
    """An Avro ``long``: zig-zag, then a little-endian base-128 varint."""
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise _Mismatch(f"{n} does not fit an Avro long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_LONGS = tuple(zigzag(n) for n in range(_SMALL))


def _long(n: int) -> bytes:
    # An int, or a bool (fastavro writes True as 1 in a plain long; a union's long branch is
    # checked before this). Anything else, a float for one, goes to fastavro to decide.
    if type(n) is not int and type(n) is not bool:
        raise _Mismatch(f"{type(n).__name__} where an Avro long belongs")
    return _SMALL_LONGS[n] if 0 <= n < _SMALL else zigzag(n)


def _micros(value: Any) -> bytes:
    """timestamp-micros: an aware datetime as microseconds since the epoch (fastavro's)."""
    if type(value) is not datetime or value.tzinfo is None:
        raise _Mismatch("a timestamp-micros that is not an aware datetime")
    delta = value - _EPOCH
    return zigzag((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _mismatch(what: str) -> bytes:
    raise _Mismatch(what)


_GLOBALS: dict[str, Any] = {
    "_long": _long,
    "_micros": _micros,
    "_mismatch": _mismatch,
    "_double": struct.Struct("<d").pack,
    "_float": struct.Struct("<f").pack,
}

#: the Python types (by name, in the generated source) each primitive union branch takes, in
#: the order ``schemas._convert`` gives fastavro the branch: the same table
_BRANCH_TYPES: dict[str, tuple[str, ...]] = {
    branch: tuple("None" if t is type(None) else t.__name__ for t in types)
    for branch, types in PRIMITIVE_TYPES.items()
}


class _Generator(SourceGenerator):
    """The source of one schema's writer: a function per named record, and constants."""

    prefix = "_w_"

    def record_lines(self, name: str, schema: Any) -> list[str]:
        lines = [f"def {name}(m, out):", "    d = m.__dict__"]
        for field in schema["fields"]:
            value = self.temp()
            lines.append(f"    {value} = d[{field['name']!r}]")
            lines.extend(self.write(field["type"], value, "    "))
        return lines

    def write(self, schema: Any, value: str, indent: str) -> Iterator[str]:
        """Statements appending ``value`` (a local) written as ``schema`` to ``out``."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            yield from self.union(schema, value, indent)
        elif isinstance(schema, str):
            yield from self.primitive(schema, value, indent)
        elif schema.get("logicalType") == "timestamp-micros" and schema["type"] == "long":
            yield f"{indent}out += _micros({value})"
        elif "logicalType" in schema:
            raise Unsupported(f"logical type {schema['logicalType']!r}")
        elif schema["type"] == "record":
            yield f"{indent}{self.record_function(schema)}({value}, out)"
        elif schema["type"] == "enum":
            indexes = {symbol: _long(i) for i, symbol in enumerate(schema["symbols"])}
            yield f"{indent}out += {self.constant(indexes, 'enum')}[{value}]"
        elif schema["type"] == "array":
            item = self.temp()
            yield f"{indent}if {value}:"
            yield f"{indent}    out += _long(len({value}))"
            yield f"{indent}    for {item} in {value}:"
            yield from self.write(schema["items"], item, indent + "        ")
            yield f"{indent}out += b'\\x00'"
        elif schema["type"] == "map":
            key, item = self.temp(), self.temp()
            yield f"{indent}if {value}:"
            yield f"{indent}    out += _long(len({value}))"
            yield f"{indent}    for {key}, {item} in {value}.items():"
            yield from self.primitive("string", key, indent + "        ")
            yield from self.write(schema["values"], item, indent + "        ")
            yield f"{indent}out += b'\\x00'"
        elif schema["type"] in _BRANCH_TYPES:
            yield from self.primitive(schema["type"], value, indent)
        else:
            raise Unsupported(f"schema {schema!r}")

    def primitive(self, kind: str, value: str, indent: str) -> Iterator[str]:
        if kind == "null":
            yield f"{indent}if {value} is not None: _mismatch('a value where null belongs')"
        elif kind == "boolean":
            yield f"{indent}if type({value}) is not bool: _mismatch('not a bool')"
            yield f"{indent}out += b'\\x01' if {value} else b'\\x00'"
        elif kind in ("int", "long"):
            yield f"{indent}out += _long({value})"
        elif kind in ("double", "float"):
            pack = "_double" if kind == "double" else "_float"
            yield f"{indent}if type({value}) is not float and type({value}) is not int:"
            yield f"{indent}    _mismatch('not a number')"
            yield f"{indent}out += {pack}({value})"
        elif kind == "string":
            encoded = self.temp()
            # str.encode refuses a lone surrogate (UnicodeEncodeError): fastavro's turn
            yield f"{indent}{encoded} = {value}.encode()"
            yield f"{indent}out += _long(len({encoded}))"
            yield f"{indent}out += {encoded}"
        elif kind == "bytes":
            yield f"{indent}if type({value}) is not bytes: _mismatch('not bytes')"
            yield f"{indent}out += _long(len({value}))"
            yield f"{indent}out += {value}"
        elif kind in self.named:
            yield from self.write(self.named[kind], value, indent)
        else:
            raise Unsupported(f"type {kind!r}")

    def union(self, branches: list[Any], value: str, indent: str) -> Iterator[str]:
        resolved = [self.resolve(branch) for branch in branches]
        if len(resolved) == 2 and "null" in resolved:
            # null and one other branch: schemas._convert gives fastavro the value as it is,
            # and fastavro takes the branch the value validates against. A record's or an
            # enum's writer refuses a value that does not fit it; a primitive is checked here
            # (fastavro refuses True for a long in a union, writes it for a plain long).
            other = 1 - resolved.index("null")
            yield f"{indent}if {value} is None:"
            yield f"{indent}    out += {_long(1 - other)!r}"
            yield f"{indent}else:"
            if resolved[other] == "string":
                yield f"{indent}    if not isinstance({value}, str): _mismatch('not a str')"
            elif isinstance(resolved[other], str) and resolved[other] in _BRANCH_TYPES:
                exact = _BRANCH_TYPES[resolved[other]][0]
                yield f"{indent}    if type({value}) is not {exact}:"
                yield f"{indent}        _mismatch('not of type {exact}')"
            yield f"{indent}    out += {_long(other)!r}"
            yield from self.write(resolved[other], value, indent + "    ")
            return
        # Several branches: the first whose Python type is exactly the value's, as
        # schemas._convert names the branch for fastavro in its (branch, value) notation.
        kind = self.temp()
        yield f"{indent}{kind} = type({value})"
        taken: set[str] = set()
        first = True
        for index, branch in enumerate(resolved):
            if isinstance(branch, dict) and branch["type"] == "record":
                model = self.models.get(branch["name"])
                if model is None:
                    raise Unsupported(f"no model for record {branch['name']}")
                python_types: tuple[str, ...] = (self.constant(model, "model"),)
            elif isinstance(branch, str) and branch in _BRANCH_TYPES:
                python_types = _BRANCH_TYPES[branch]
            else:
                raise Unsupported(f"union branch {branch!r}")
            tests = [t for t in python_types if t not in taken]
            taken.update(tests)
            if not tests:
                continue  # an earlier branch takes every value of this one's type
            condition = " or ".join(
                f"{value} is None" if t == "None" else f"{kind} is {t}" for t in tests
            )
            yield f"{indent}{'if' if first else 'elif'} {condition}:"
            yield f"{indent}    out += {_long(index)!r}"
            if branch != "null":
                yield from self.write(branch, value, indent + "    ")
            first = False
        yield f"{indent}else:"
        yield f"{indent}    _mismatch('a value of no branch of the union')"


def compile_writer(parsed: Any, models: dict[str, type[AvroRecord]]) -> Writer:
    """The writer of the record schema ``parsed`` (fastavro's parsed form, its named types in
    ``__named_schemas``), for the models by Avro full name; ``Unsupported`` if the schema uses
    something the generator does not write."""
    write_top = _Generator(parsed, models).compile(parsed, _GLOBALS, "writer")

    def write(record: AvroRecord, header: bytes) -> bytes:
        # the codec has checked that ``record`` is the schema's model
        out = bytearray(header)
        write_top(record, out)
        return bytes(out)

    return write
