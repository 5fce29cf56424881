"""Canonical events as Arrow columns an analyst can query, derived from the Avro schema.

One row per event: where it was in Kafka (``kafka_topic``, ``kafka_partition``,
``kafka_offset``, ``kafka_timestamp``, ``kafka_key``, ``schema_id``: the writer schema's
identity as the codec names it), the envelope's own fields, the ``source`` record's fields
lifted to the top (``platform``, ``entity_type``, ``entity_id``, ``event_type``, ``actor``
...), and one struct column per branch of ``data`` (``data_contact``, ``data_case``,
``data_message``, ``data_handoff``; the others are null). "case" is an SQL keyword, hence
the prefix. Nested records are structs, arrays lists, maps maps, enums strings,
``timestamp-micros`` UTC timestamps. A union of several scalar types (custom field values:
boolean, long, double or string) is its value as JSON text, since Parquet has no such union.

The columns follow the current ``deskstream.Envelope.avsc``: a field added there is a column
here with no code change. Values come from ``schemas.codec.decode_dict``, which resolves any
known writer schema into the current one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from schemas.registry import get_registry

__all__ = ["PROVENANCE", "EnvelopeColumns"]

#: provenance columns, first in every file
PROVENANCE: tuple[tuple[str, pa.DataType], ...] = (
    ("kafka_topic", pa.string()),
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
    ("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
    ("kafka_key", pa.string()),
    ("schema_id", pa.string()),
)

_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
_LOGICAL: dict[str, pa.DataType] = {
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "uuid": pa.string(),
}

Convert = Callable[[Any], Any]


def _as_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


class _Types:
    """Avro (fastavro's parsed form) → Arrow type, plus the value conversion it needs (None
    when fastavro's value already fits)."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named[schema]
        return schema

    def of(self, schema: Any) -> tuple[pa.DataType, Convert | None]:
        schema = self.resolve(schema)
        if isinstance(schema, str):
            return _PRIMITIVES[schema], None
        if isinstance(schema, list):
            return self._union(schema)
        kind = schema["type"]
        if "name" in schema:
            self.named[schema["name"]] = schema
        logical = schema.get("logicalType")
        if logical in _LOGICAL:
            return _LOGICAL[logical], None
        if kind == "record":
            return self.record(schema)
        if kind == "enum":
            return pa.string(), None
        if kind == "fixed":
            return pa.binary(schema["size"]), None
        if kind == "array":
            item, convert = self.of(schema["items"])
            if convert is None:
                return pa.list_(item), None
            return pa.list_(item), lambda v: None if v is None else [convert(x) for x in v]
        if kind == "map":
            value, convert = self.of(schema["values"])
            if convert is None:
                return pa.map_(pa.string(), value), None
            return pa.map_(pa.string(), value), (
                lambda v: None if v is None else {k: convert(x) for k, x in v.items()}
            )
        return self.of(kind)  # {"type": "string"} and the like

    def _union(self, branches: list[Any]) -> tuple[pa.DataType, Convert | None]:
        present = [b for b in branches if self.resolve(b) != "null"]
        if len(present) == 1:
            return self.of(present[0])  # [null, X]: a nullable X
        for branch in present:
            self.of(branch)  # register named types declared inside the union
        return pa.string(), _as_json

    def record(self, schema: Mapping[str, Any]) -> tuple[pa.DataType, Convert | None]:
        fields, converts = [], {}
        for f in schema["fields"]:
            arrow, convert = self.of(f["type"])
            fields.append(pa.field(f["name"], arrow))
            if convert is not None:
                converts[f["name"]] = convert
        if not converts:
            return pa.struct(fields), None

        def convert_record(value: Any) -> Any:
            if value is None:
                return None
            return {**value, **{k: c(value.get(k)) for k, c in converts.items()}}

        return pa.struct(fields), convert_record


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower()


class EnvelopeColumns:
    """The Arrow schema of an exported event, and the row of one decoded envelope."""

    def __init__(self) -> None:
        parsed = get_registry().entry_for("deskstream.Envelope").parsed
        types = _Types()
        fields = [pa.field(name, arrow) for name, arrow in PROVENANCE]
        #: column → (where it comes from: "top", "source" or a data branch, the Avro field
        #: name, the conversion)
        self._plan: list[tuple[str, str, str, Convert | None]] = []
        self._branches: dict[str, str] = {}
        for field in parsed["fields"]:
            name, schema = field["name"], field["type"]
            if name == "source":
                for inner in types.resolve(schema)["fields"]:
                    arrow, convert = types.of(inner["type"])
                    fields.append(pa.field(inner["name"], arrow))
                    self._plan.append((inner["name"], "source", inner["name"], convert))
            elif name == "data":
                for branch in schema:
                    if types.resolve(branch) == "null":
                        continue
                    arrow, convert = types.of(branch)
                    resolved = types.resolve(branch)
                    column = f"data_{_short(resolved['name'])}"
                    fields.append(pa.field(column, arrow))
                    self._branches[resolved["name"]] = column
                    self._plan.append((column, "data", resolved["name"], convert))
            else:
                arrow, convert = types.of(schema)
                fields.append(pa.field(name, arrow))
                self._plan.append((name, "top", name, convert))
        self.schema = pa.schema(fields)

    def row(self, envelope: Mapping[str, Any], provenance: Mapping[str, Any]) -> dict[str, Any]:
        """One row: ``provenance`` (the PROVENANCE columns) and the decoded ``envelope``."""
        row = dict(provenance)
        source = envelope["source"]
        data = envelope.get("data")
        branch, body = data if isinstance(data, tuple) else (None, None)
        for column, where, name, convert in self._plan:
            if where == "top":
                value = envelope.get(name)
            elif where == "source":
                value = source.get(name)
            else:
                value = body if branch == name else None
            row[column] = value if convert is None or value is None else convert(value)
        return row
