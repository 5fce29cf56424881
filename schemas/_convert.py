"""Compiled converters between record models and fastavro datums, one pair per schema.

fastavro speaks dicts; the codec speaks models. Walking a schema for every message would cost
more than the encoding itself, so each schema is compiled once into closures that touch only
what needs converting: nested records (model -> dict), and unions with several branches, which
are written in fastavro's ``(branch name, value)`` tuple notation so that ``True`` is never
written as a long, ``1`` never as a double, and a Case never as a Contact. Everything else
(strings, numbers, enums as ``StrEnum``, timestamps) passes through untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from schemas.errors import SchemaError
from schemas.models import AvroRecord
from schemas.registry import SchemaEntry

__all__ = ["to_datum_for", "to_model_for"]

_Convert = Callable[[Any], Any]

_PRIMITIVE_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (float,),
    "double": (float,),
    "bytes": (bytes,),
    "string": (str,),
}


def _model_classes() -> dict[str, type[AvroRecord]]:
    # Every record model, found through the base class, keyed by Avro full name.
    found: dict[str, type[AvroRecord]] = {}
    pending = list(AvroRecord.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.avro_name] = cls
        pending.extend(cls.__subclasses__())
    return found


def _same(value: Any) -> Any:
    return value


class _Compiler:
    """Turns one parsed schema into a model->datum and a datum->model converter."""

    def __init__(self, parsed: Any) -> None:
        self.named: dict[str, Any] = parsed["__named_schemas"]
        self.models = _model_classes()
        self._to_datum: dict[str, _Convert] = {}
        self._to_model: dict[str, _Convert | None] = {}

    def _resolve(self, schema: Any) -> Any:
        return self.named[schema] if isinstance(schema, str) and schema in self.named else schema

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
            inner = self.to_datum(schema["items" if kind == "array" else "values"], where)
            if inner is None:
                return None
            if kind == "array":
                return lambda values: [inner(v) for v in values]
            return lambda values: {k: inner(v) for k, v in values.items()}
        return None  # enum (StrEnum is a str), fixed, logical types: fastavro handles them

    def _record_to_datum(self, schema: Any) -> _Convert:
        name = schema["name"]
        if name not in self._to_datum:
            # Placeholder first so a recursive schema refers to itself instead of looping.
            self._to_datum[name] = lambda model: self._to_datum[name](model)
            plans = [
                (f["name"], plan)
                for f in schema["fields"]
                if (plan := self.to_datum(f["type"], f"{name}.{f['name']}")) is not None
            ]

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
            inner = self.to_datum(non_null[0], where)
            if inner is None:
                return None
            return lambda value: None if value is None else inner(value)
        # Several branches: say which one, in fastavro's (name, value) tuple notation, so
        # True never becomes a long, 1 never a double and a Case never a Contact.
        dispatch: dict[type, tuple[str | None, _Convert | None]] = {}
        labels = []
        for branch in resolved:
            if isinstance(branch, dict) and branch["type"] == "record":
                label = branch["name"]
                dispatch[self.models[label]] = (label, self.to_datum(branch, where))
            elif isinstance(branch, str) and branch in _PRIMITIVE_TYPES:
                label = branch
                for py_type in _PRIMITIVE_TYPES[branch]:
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

    def to_model(self, schema: Any) -> _Convert | None:
        """Fix-ups before pydantic validation; None means "nothing to fix under here".

        fastavro hands back plain dicts, except that a union with several record branches
        comes back as (full name, dict): those become the named model, so pydantic never has
        to guess between Contact, Case, Message and Handoff from a dict's shape.
        """
        schema = self._resolve(schema)
        if isinstance(schema, list):
            records = [b for b in map(self._resolve, schema) if isinstance(b, dict)]
            records = [b for b in records if b["type"] == "record"]
            if len(records) < 2:
                single = self.to_model(records[0]) if records else None
                if single is None:
                    return None
                return lambda value: value if not isinstance(value, dict) else single(value)
            builders = {b["name"]: (self.models[b["name"]], self.to_model(b)) for b in records}

            def union_to_model(value: Any) -> Any:
                if not isinstance(value, tuple):
                    return value  # null or a primitive branch
                cls, fix = builders[value[0]]
                return cls.model_validate(value[1] if fix is None else fix(value[1]))

            return union_to_model
        if not isinstance(schema, dict):
            return None
        kind = schema["type"]
        if kind == "record":
            name = schema["name"]
            if name not in self._to_model:
                # Placeholder first so a recursive schema refers to itself instead of looping.
                self._to_model[name] = lambda datum: (self._to_model[name] or _same)(datum)
                plans = [
                    (f["name"], plan)
                    for f in schema["fields"]
                    if (plan := self.to_model(f["type"])) is not None
                ]

                def record_to_model(datum: Any) -> Any:
                    for field, plan in plans:
                        datum[field] = plan(datum[field])
                    return datum

                self._to_model[name] = record_to_model if plans else None
            return self._to_model[name]
        if kind in ("array", "map"):
            inner = self.to_model(schema["items" if kind == "array" else "values"])
            if inner is None:
                return None
            if kind == "array":
                return lambda values: [inner(v) for v in values]
            return lambda values: {k: inner(v) for k, v in values.items()}
        return None


@functools.cache
def to_datum_for(entry: SchemaEntry) -> _Convert:
    """model -> fastavro datum for the schema ``entry`` writes with."""
    convert = _Compiler(entry.parsed).to_datum(entry.parsed, entry.name)
    assert convert is not None  # a record always converts
    return convert


@functools.cache
def to_model_for(entry: SchemaEntry) -> Callable[[Any], AvroRecord]:
    """fastavro datum (as read with ``entry``) -> model.

    Data written with an older released schema is resolved into the current one while it is
    read, so the fix-ups follow the reader's shape, not the writer's.
    """
    reader = entry.parsed if entry.reader is None else entry.reader
    fix = _Compiler(reader).to_model(reader)
    model = entry.model

    def to_model(datum: Any) -> AvroRecord:
        return model.model_validate(datum if fix is None else fix(datum))

    return to_model
