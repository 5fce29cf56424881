"""Change event layouts: the Avro schema of each ``<Entity>ChangeEvent`` and its two renderings.

Field position 0 is ``ChangeEventHeader``; the entity's fields follow in object order, with a
compound field (Contact ``Name``) standing as one nested record where its first component is.
Over CometD an event is JSON: only populated (create) or changed (update) fields appear and
the header's ``changedFields`` lists field names (``Name.LastName`` for a compound component);
``nulledFields`` and ``diffFields`` are Pub/Sub-only (see ``cdc``). Over the Pub/Sub
API it is Avro binary: every field is present (unchanged ones null), dates are epoch
milliseconds, and the header's changed/nulled/diff fields are bitmaps: hex strings whose bit
``i`` (least significant first) marks schema position ``i``, plus ``"<pos>-0x.."`` entries for
the components of the compound field at ``pos``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fastavro

from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.fields import format_datetime
from sandboxes.salesforce.objects import FieldSpec

__all__ = ["CHANGE_TYPES", "CdcLayout", "LayoutEntry", "bitmap", "decode_bitmap"]

CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
)

_ARRAY_OF_STRINGS = {"type": "array", "items": "string"}


def _header_schema() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "ChangeEventHeader",
        "namespace": "com.salesforce.eventbus",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": _ARRAY_OF_STRINGS},
            {
                "name": "changeType",
                "type": {"type": "enum", "name": "ChangeType", "symbols": list(CHANGE_TYPES)},
            },
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": _ARRAY_OF_STRINGS},
            {"name": "diffFields", "type": _ARRAY_OF_STRINGS},
            {"name": "changedFields", "type": _ARRAY_OF_STRINGS},
        ],
    }


def _avro_type(spec: FieldSpec) -> str:
    return {
        "boolean": "boolean",
        "datetime": "long",
        "date": "int",
        "int": "int",
        "double": "double",
    }.get(spec.type, "string")


def _nullable(name: str, avro_type: Any, doc: str) -> dict[str, Any]:
    return {"name": name, "type": ["null", avro_type], "doc": doc, "default": None}


def bitmap(positions: Iterable[int]) -> str:
    """``0x``-prefixed upper-case hex of the bits at ``positions``, whole bytes wide."""
    value = 0
    for position in positions:
        value |= 1 << position
    width = max(1, (value.bit_length() + 7) // 8)
    return "0x" + value.to_bytes(width, "big").hex().upper()


def decode_bitmap(text: str) -> list[int]:
    """Positions set in a ``0x..`` bitmap (the inverse of :func:`bitmap`)."""
    value = int(text, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


@dataclass(frozen=True)
class LayoutEntry:
    """One top-level field of a change event: a plain field or a compound of components."""

    name: str
    field: FieldSpec | None
    components: tuple[FieldSpec, ...] = ()


class CdcLayout:
    """The change event shape of one entity, its Avro schema and schema id."""

    def __init__(self, entity: str) -> None:
        spec = OBJECTS[entity]
        self.entity = entity
        self.topic = f"/data/{entity}ChangeEvent"
        entries: list[LayoutEntry] = []
        seen: set[str] = set()
        for field in spec.fields:
            if not field.in_cdc:
                continue
            if field.compound is None:
                entries.append(LayoutEntry(field.name, field))
            elif field.compound not in seen:
                seen.add(field.compound)
                parts = tuple(f for f in spec.fields if f.compound == field.compound)
                entries.append(LayoutEntry(field.compound, None, parts))
        self.entries = tuple(entries)
        fields: list[dict[str, Any]] = [
            {"name": "ChangeEventHeader", "type": _header_schema(), "doc": "Data:"}
        ]
        for entry in self.entries:
            if entry.field is not None:
                fields.append(
                    _nullable(entry.name, _avro_type(entry.field), f"Data:{entry.field.type}")
                )
            else:
                nested = {
                    "type": "record",
                    "name": spec.compound_types[entry.name],
                    "fields": [
                        _nullable(c.name, _avro_type(c), f"Data:{c.type}") for c in entry.components
                    ],
                }
                fields.append(_nullable(entry.name, nested, "Data:compound"))
        self.schema: dict[str, Any] = {
            "type": "record",
            "name": f"{entity}ChangeEvent",
            "namespace": "com.sforce.eventbus",
            "fields": fields,
        }
        self.schema_json = json.dumps(self.schema, separators=(",", ":"))
        digest = hashlib.sha256(self.schema_json.encode()).digest()
        self.schema_id = base64.urlsafe_b64encode(digest).decode()[:22]
        self._parsed = fastavro.parse_schema(self.schema)
        self._top = {entry.name: i + 1 for i, entry in enumerate(self.entries)}
        self._nested = {
            c.name: (i + 1, j)
            for i, entry in enumerate(self.entries)
            for j, c in enumerate(entry.components)
        }

    # -- names ---------------------------------------------------------------------------

    def json_names(self, fields: Iterable[str]) -> list[str]:
        """Header field names as CometD lists them (``Name.LastName`` for components)."""
        names = []
        for name in fields:
            nested = self._nested.get(name)
            if nested is not None:
                names.append(f"{self.entries[nested[0] - 1].name}.{name}")
            elif name in self._top:
                names.append(name)
        return names

    def bitmaps(self, fields: Iterable[str]) -> list[str]:
        """Header field list as the Pub/Sub API sends it: top-level bitmap, then compounds."""
        top: list[int] = []
        nested: dict[int, list[int]] = {}
        for name in fields:
            if name in self._nested:
                parent, child = self._nested[name]
                nested.setdefault(parent, []).append(child)
            elif name in self._top:
                top.append(self._top[name])
        result = [bitmap(top)] if top else []
        result += [f"{parent}-{bitmap(children)}" for parent, children in sorted(nested.items())]
        return result

    # -- bodies ---------------------------------------------------------------------------

    def json_body(self, values: dict[str, Any]) -> dict[str, Any]:
        """The record part of a CometD event: only the fields in ``values``."""
        body: dict[str, Any] = {}
        for entry in self.entries:
            if entry.field is not None:
                if entry.name in values:
                    body[entry.name] = _json_value(values[entry.name])
                continue
            nested = {
                c.name: _json_value(values[c.name]) for c in entry.components if c.name in values
            }
            if nested:
                body[entry.name] = nested
        return body

    def avro_record(self, header: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """The full Avro datum: every field present, the ones not in ``values`` null."""
        record: dict[str, Any] = {"ChangeEventHeader": header}
        for entry in self.entries:
            if entry.field is not None:
                record[entry.name] = _avro_value(values.get(entry.name))
                continue
            if any(c.name in values for c in entry.components):
                record[entry.name] = {
                    c.name: _avro_value(values.get(c.name)) for c in entry.components
                }
            else:
                record[entry.name] = None
        return record

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._parsed, record)
        return buffer.getvalue()


def _json_value(value: Any) -> Any:
    return format_datetime(value, zulu=True) if isinstance(value, datetime) else value


def _avro_value(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value
