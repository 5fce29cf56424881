"""Compiled converters between record models and fastavro datums, one pair per schema.

fastavro speaks dicts; the codec speaks models. Walking a schema for every message would cost
more than the encoding itself, so each schema is compiled once into closures that touch only
what needs converting: nested records (model -> dict), and unions with several branches, which
are written in fastavro's ``(branch name, value)`` tuple notation so that ``True`` is never
written as a long, ``1`` never as a double, and a Case never as a Contact. Everything else
(strings, numbers, enums as ``StrEnum``, timestamps) passes through untouched.

The way back builds the models from fastavro's dicts without pydantic's validation
(``_Compiler.to_model`` says why that drops no check): nested records and named union
branches become their models, enum symbols their ``StrEnum`` members, and an Avro ``int``
is checked to fit 32 bits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from schemas import models
from schemas.errors import SchemaError
from schemas.models import AvroRecord
from schemas.registry import SchemaEntry

__all__ = [
    "PRIMITIVE_TYPES",
    "enum_members",
    "model_classes",
    "record_builder",
    "to_datum_for",
    "to_model_for",
]

_Convert = Callable[[Any], Any]

PRIMITIVE_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (float,),
    "double": (float,),
    "bytes": (bytes,),
    "string": (str,),
}


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def model_classes() -> dict[str, type[AvroRecord]]:
    """Every record model, found through the base class, keyed by Avro full name."""
    found: dict[str, type[AvroRecord]] = {}
    pending = list(AvroRecord.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.avro_name] = cls
        pending.extend(cls.__subclasses__())
    return found


class _Compiler:
    """Turns one parsed schema into a model->datum and a datum->model converter."""

    def __init__(self, parsed: Any) -> None:
        self.named: dict[str, Any] = parsed["__named_schemas"]
        self.models = model_classes()
        self._to_datum: dict[str, _Convert] = {}
        self._to_model: dict[str, _Convert] = {}

    def _resolve(self, schema: Any) -> Any:
        return self.named[schema] if isinstance(schema, str) and schema in self.named else schema

    def _field_plans(
        self,
        schema: Any,
        compiled: dict[str, _Convert],
        plan_of: Callable[[Any, str], _Convert | None],
    ) -> list[tuple[str, _Convert]]:
        """(field, converter) for each field of a record schema that needs converting."""
        name = schema["name"]
        # Placeholder first so a recursive schema refers to itself instead of looping.
        compiled[name] = lambda value: compiled[name](value)
        return [
            (f["name"], plan)
            for f in schema["fields"]
            if (plan := plan_of(f["type"], f"{name}.{f['name']}")) is not None
        ]

    # --- model -> fastavro datum ------------------------------------------------------------

    def to_datum(self, schema: Any, where: str) -> _Convert | None:
        """None means "pass the value through unchanged" (primitives, enums, timestamps)."""
        schema = self._resolve(schema)
        if isinstance(schema, list):
            return self._union_to_datum(schema, where)
        if not isinstance(schema, dict):
            return None
        kind = schema["type"]
        if kind == "record":
            return self._record_to_datum(schema)
        if kind in ("array", "map"):
            return _each(
                kind, self.to_datum(schema["items" if kind == "array" else "values"], where)
            )
        return None  # enum (StrEnum is a str), fixed, logical types: fastavro handles them

    def _record_to_datum(self, schema: Any) -> _Convert:
        name = schema["name"]
        if name not in self._to_datum:
            plans = self._field_plans(schema, self._to_datum, self.to_datum)

            def record_to_datum(model: Any) -> Any:
                # Pydantic keeps field values in __dict__; copying it is the cheapest walk.
                datum = dict(model.__dict__)
                for field, plan in plans:
                    datum[field] = plan(datum[field])
                return datum

            self._to_datum[name] = record_to_datum
        return self._to_datum[name]

    def _union_to_datum(self, branches: list[Any], where: str) -> _Convert | None:
        resolved = [self._resolve(b) for b in branches]
        non_null = [b for b in resolved if b != "null"]
        if len(non_null) == 1:
            return _optional(self.to_datum(non_null[0], where))
        # Several branches: say which one, in fastavro's (name, value) tuple notation, so
        # True never becomes a long, 1 never a double and a Case never a Contact.
        dispatch: dict[type, tuple[str | None, _Convert | None]] = {}
        labels = []
        for branch in resolved:
            if isinstance(branch, dict) and branch["type"] == "record":
                label = branch["name"]
                dispatch[self.models[label]] = (label, self.to_datum(branch, where))
            elif isinstance(branch, str) and branch in PRIMITIVE_TYPES:
                label = branch
                for py_type in PRIMITIVE_TYPES[branch]:
                    dispatch.setdefault(py_type, (None if branch == "null" else branch, None))
            else:
                raise SchemaError(f"{where}: union branch {branch!r} is not supported by the codec")
            labels.append(label)

        def union_to_datum(value: Any) -> Any:
            hit = dispatch.get(type(value))
            if hit is None:
                raise SchemaError(
                    f"cannot encode field {where}: a {type(value).__name__} fits none of its "
                    f"union branches ({', '.join(labels)})"
                )
            label, inner = hit
            if label is None:
                return None
            return (label, value if inner is None else inner(value))

        return union_to_datum

    # --- fastavro datum -> model ------------------------------------------------------------

    def to_model(self, schema: Any, where: str) -> _Convert | None:
        """fastavro datum -> model value; None means "the value is already right as it is".

        No pydantic validation: fastavro has read the body against the schema, so every
        value already has the type the schema names (a str for a string, an int for a long, an
        aware UTC datetime for a timestamp-micros, a dict of exactly the record's fields, a
        symbol of the enum), which is the type the model's field has (``test_models`` pins
        the models to the schemas). That holds for any bytes, ours or not: the Avro read *is*
        the schema check, it does not trust the writer. What the models add on top of the
        schemas is checked here: an Avro ``int`` in 32 bits (a varint may carry more), and
        the enum symbols, which become the models' ``StrEnum`` members. Validating the dicts
        again in pydantic cost about a third of a decode.
        """
        schema = self._resolve(schema)
        if isinstance(schema, list):
            return self._union_to_model(schema, where)
        if isinstance(schema, str):
            return _int32_of(where) if schema == "int" else None
        kind = schema["type"]
        if kind == "record":
            return self._record_to_model(schema)
        if kind == "enum":
            return _enum_of(schema, where)
        if kind in ("array", "map"):
            return _each(
                kind, self.to_model(schema["items" if kind == "array" else "values"], where)
            )
        if kind == "int" and "logicalType" not in schema:
            return _int32_of(where)
        if kind in PRIMITIVE_TYPES or schema.get("logicalType") == "timestamp-micros":
            return None  # fastavro's value is the model's (timestamps: aware, UTC)
        raise SchemaError(f"{where}: {schema!r} is not supported by the codec's reader")

    def _record_to_model(self, schema: Any) -> _Convert:
        name = schema["name"]
        if name not in self._to_model:
            plans = self._field_plans(schema, self._to_model, self.to_model)
            build = record_builder(self.models[name], [f["name"] for f in schema["fields"]])

            def record_to_model(datum: Any) -> Any:
                for field, plan in plans:
                    datum[field] = plan(datum[field])
                return build(datum)

            self._to_model[name] = record_to_model
        return self._to_model[name]

    def _union_to_model(self, branches: list[Any], where: str) -> _Convert | None:
        resolved = [self._resolve(b) for b in branches]
        non_null = [b for b in resolved if b != "null"]
        if len(non_null) == 1:
            return _optional(self.to_model(non_null[0], where))
        # Several branches. fastavro names a record's branch, (full name, dict), so a Case is
        # never read as a Contact; primitives come back as they are.
        records: dict[str, _Convert] = {}
        for branch in non_null:
            if isinstance(branch, dict) and branch["type"] == "record":
                records[branch["name"]] = self._record_to_model(branch)
            elif branch not in ("boolean", "long", "double", "float", "string", "bytes"):
                raise SchemaError(f"{where}: union branch {branch!r} is not supported by the codec")
        if not records:
            return None
        # With one record branch, fastavro hands its dict back as it is (no name to give).
        only = next(iter(records.values())) if len(records) == 1 else None

        def union_to_model(value: Any) -> Any:
            if isinstance(value, tuple):
                return records[value[0]](value[1])
            if only is not None and isinstance(value, dict):
                return only(value)
            return value  # null or a primitive branch

        return union_to_model


def _optional(inner: _Convert | None) -> _Convert | None:
    """``inner`` for a union of null and one other branch."""
    if inner is None:
        return None
    return lambda value: None if value is None else inner(value)


def _each(kind: str, inner: _Convert | None) -> _Convert | None:
    """``inner`` on every item of an Avro array or every value of an Avro map."""
    if inner is None:
        return None
    if kind == "array":
        return lambda values: [inner(v) for v in values]
    return lambda values: {k: inner(v) for k, v in values.items()}


def _int32_of(where: str) -> _Convert:
    def int32(value: int) -> int:
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise SchemaError(f"field {where} holds {value}, outside an Avro int's 32 bits")
        return value

    return int32


def enum_members(schema: Any) -> tuple[type, dict[str, Any]]:
    """The StrEnum mirroring the Avro enum ``schema`` (models.py names them alike), and its
    members by symbol."""
    cls = getattr(models, schema["name"].rpartition(".")[2])
    return cls, {member.value: member for member in cls}


def _enum_of(schema: Any, where: str) -> _Convert:
    cls, members = enum_members(schema)

    def enum(symbol: str) -> Any:
        member = members.get(symbol)
        if member is None:
            raise SchemaError(f"field {where} holds {symbol!r}, not a {cls.__name__}")
        return member

    return enum


def record_builder(
    cls: type[AvroRecord], fields: list[str]
) -> Callable[[dict[str, Any]], AvroRecord]:
    """The model holding ``datum``'s values as they are: what ``model_construct`` does for
    these models (no aliases, no private attributes, no post-init, every field given), with
    the values in ``__dict__`` in field order and every field set, as a validation leaves them.
    """
    if list(cls.model_fields) != fields or cls.__private_attributes__:
        raise SchemaError(f"{cls.__name__} does not mirror its schema's fields {fields}")
    if any(f.alias or f.validation_alias for f in cls.model_fields.values()):
        raise SchemaError(f"{cls.__name__}: the codec's reader does not handle field aliases")
    if cls.__pydantic_post_init__:
        raise SchemaError(f"{cls.__name__}: the codec's reader does not run model_post_init")
    new = cls.__new__
    set_attr = object.__setattr__
    every = frozenset(fields)

    def build(datum: dict[str, Any]) -> AvroRecord:
        model = new(cls)
        set_attr(model, "__dict__", datum)
        set_attr(model, "__pydantic_fields_set__", set(every))
        set_attr(model, "__pydantic_extra__", None)
        set_attr(model, "__pydantic_private__", None)
        return model

    return build


@functools.cache
def to_datum_for(entry: SchemaEntry) -> _Convert:
    """model -> fastavro datum for the schema ``entry`` writes with."""
    convert = _Compiler(entry.parsed).to_datum(entry.parsed, entry.name)
    assert convert is not None  # a record always converts
    return convert


@functools.cache
def to_model_for(entry: SchemaEntry) -> Callable[[Any], AvroRecord]:
    """fastavro datum (as read with ``entry``) -> model; a value the model refuses raises
    ``SchemaError``.

    Data written with an older released schema is resolved into the current one while it is
    read, so the conversion follows the reader's shape, not the writer's.
    """
    reader = entry.parsed if entry.reader is None else entry.reader
    convert = _Compiler(reader).to_model(reader, entry.name)
    assert convert is not None  # a record always converts
    return cast(Callable[[Any], AvroRecord], convert)
