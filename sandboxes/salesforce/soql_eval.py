"""Running a parsed SOQL query against the org's records: fields, filters, order, rows.

Semantics, from the SOQL and SOSL Reference unless marked:

* "Comparison Operators": ``=`` on text is case-insensitive (for all but unique
  case-sensitive fields, which the sandbox has none of); ``LIKE`` is case-insensitive, ``%``
  matches any run of characters and ``_`` one, ``\\%``/``\\_`` match themselves; ``IN``/``NOT IN``
  take a list; a field compared with ``null`` by ``=``/``!=`` tests for a missing value, and
  ``!=`` is true for a record whose field is null (SOQL has no three-valued logic).
* "Date Formats and Date Literals in WHERE": a dateTime literal filters dateTime fields only,
  a date literal date fields only; a quoted value on them is refused with ``INVALID_FIELD``
  ("value of filter criterion for field 'X' must be of type dateTime and should not be
  enclosed in quotes": the wording is UNVERIFIED, seen in public answers).
* dateTime values compare at whole seconds: "the system ignores the milliseconds for the
  purposes of considering two values equal" (an answer on salesforce.stackexchange.com,
  "Using SystemModstamp and a timestamp to implement incremental data fetch";
  UNVERIFIED on a reference page, query: "SOQL datetime milliseconds comparison"). ORDER BY
  sorts by the stored value (milliseconds included): within one second the order of two
  records is not what a whole-second comparison says (the harsher reading for a cursor).
* "ORDER BY": ascending by default, nulls first unless ``NULLS LAST``, text sorts
  case-insensitively; long text areas can be neither filtered nor sorted (``describe``
  reports ``filterable``/``sortable`` false; error text UNVERIFIED).
* Unknown objects answer ``INVALID_TYPE``, unknown fields ``INVALID_FIELD`` "No such column
  'X' on entity 'Y'" ("Status Codes and Error Responses" gives the list-of-errors shape).
* Ids compare as 18-character ids; ordering and ``<``/``>`` on ids use the 18-character text
  (UNVERIFIED: how the platform orders ids is not documented; it only has to agree with
  itself, which it does here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cmp_to_key
from typing import Any

from sandboxes.salesforce.fields import format_datetime
from sandboxes.salesforce.ids import normalize_id
from sandboxes.salesforce.objects import FieldSpec, SObjectSpec
from sandboxes.salesforce.soql import (
    And,
    Comparison,
    Condition,
    FieldPath,
    InList,
    Like,
    Not,
    Or,
    OrderItem,
    Query,
    SoqlError,
    Value,
)

__all__ = ["Plan", "ResolvedField", "compile_query"]

Record = dict[str, Any]
#: Finds a parent record: (object name, id) → record or None.
Lookup = Callable[[str, str], Record | None]

_TEXT = frozenset({"string", "textarea", "email", "phone", "picklist", "url"})


@dataclass(frozen=True)
class ResolvedField:
    """A field of the queried object, or one reached through a parent relationship."""

    spec: FieldSpec
    #: The reference field and the relationship name when the path has a parent hop.
    via: FieldSpec | None = None
    parent: SObjectSpec | None = None

    def read(self, record: Record, lookup: Lookup) -> Any:
        if self.via is None or self.parent is None:
            return record.get(self.spec.name)
        parent_id = record.get(self.via.name)
        parent = lookup(self.parent.name, parent_id) if parent_id else None
        return None if parent is None else parent.get(self.spec.name)


def _no_column(name: str, spec: SObjectSpec) -> SoqlError:
    return SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{spec.name}'.")


def _resolve(
    path: FieldPath, spec: SObjectSpec, objects: Mapping[str, SObjectSpec]
) -> ResolvedField:
    if len(path.parts) == 1:
        field = spec.field(path.parts[0])
        if field is None:
            raise _no_column(path.parts[0], spec)
        return ResolvedField(field)
    relationship, name = path.parts
    via = next(
        (
            f
            for f in spec.fields
            if f.relationship_name and f.relationship_name.lower() == relationship.lower()
        ),
        None,
    )
    # Only single-target relationships to objects the sandbox stores can be followed.
    targets = [objects[t] for t in via.reference_to if t in objects] if via else []
    if via is None or len(targets) != 1 or len(via.reference_to) != 1:
        raise SoqlError(
            "INVALID_FIELD",
            f"Didn't understand relationship '{relationship}' in field path. Check the "
            "relationship name and that the sandbox stores the parent object.",
        )
    field = targets[0].field(name)
    if field is None:
        raise _no_column(name, targets[0])
    return ResolvedField(field, via, targets[0])


def _type_error(field: FieldSpec, expected: str) -> SoqlError:
    return SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{field.name}' must be of type {expected} and "
        "should not be enclosed in quotes",
    )


def _literal(field: FieldSpec, value: Value) -> Any:
    """``value`` as the field's stored type, or the error the org gives for a mismatch."""
    if value is None:
        return None
    kind = field.type
    if kind == "datetime":
        if not isinstance(value, datetime):
            raise _type_error(field, "dateTime")
        return value.replace(microsecond=0)
    if kind == "date":
        if isinstance(value, datetime) or not isinstance(value, date):
            raise _type_error(field, "date")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(field, "boolean")
        return value
    if kind in ("int", "double"):
        if isinstance(value, bool) or not isinstance(value, Decimal):
            raise _type_error(field, "double" if kind == "double" else "int")
        return value
    if not isinstance(value, str):
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{field.name}' must be of type string and "
            "should be enclosed in quotes",
        )
    if kind in ("id", "reference"):
        record_id = normalize_id(value)
        if record_id is None:
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        return record_id
    return value.lower()


def _stored(field: FieldSpec, value: Any) -> Any:
    """A stored value in the form literals compare against."""
    if value is None:
        return None
    if field.type == "datetime":
        return value.replace(microsecond=0)
    if field.type in ("int", "double"):
        return Decimal(str(value))
    if field.type in _TEXT:
        return str(value).lower()
    return value


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}
#: A compiled filter: record, parent lookup → keep?
Predicate = Callable[[Record, Lookup], bool]


class _Compiler:
    def __init__(self, spec: SObjectSpec, objects: Mapping[str, SObjectSpec]) -> None:
        self.spec = spec
        self.objects = objects

    def field(self, path: FieldPath, *, purpose: str) -> ResolvedField:
        resolved = _resolve(path, self.spec, self.objects)
        kind = resolved.spec.type
        if kind in ("textarea", "base64") and purpose != "select":
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{resolved.spec.name}' can not be {purpose} in a query call",
            )
        return resolved

    def condition(self, node: Condition) -> Predicate:
        if isinstance(node, And):
            parts = [self.condition(item) for item in node.items]
            return lambda r, lk: all(p(r, lk) for p in parts)
        if isinstance(node, Or):
            parts = [self.condition(item) for item in node.items]
            return lambda r, lk: any(p(r, lk) for p in parts)
        if isinstance(node, Not):
            inner = self.condition(node.item)
            return lambda r, lk: not inner(r, lk)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, InList):
            return self.in_list(node)
        return self.comparison(node)

    def like(self, node: Like) -> Predicate:
        field = self.field(node.field, purpose="filtered")
        if field.spec.type not in _TEXT:
            raise SoqlError(
                "INVALID_FIELD",
                f"invalid operator on {field.spec.type} field '{field.spec.name}': LIKE "
                "works on text fields only",
            )
        regex = _like(node.pattern)
        return lambda r, lk: (v := field.read(r, lk)) is not None and bool(regex.fullmatch(v))

    def in_list(self, node: InList) -> Predicate:
        field = self.field(node.field, purpose="filtered")
        wanted = {_literal(field.spec, v) for v in node.values}
        negated = node.negated
        return lambda r, lk: (_stored(field.spec, field.read(r, lk)) in wanted) != negated

    def comparison(self, node: Comparison) -> Predicate:
        field = self.field(node.field, purpose="filtered")
        literal = _literal(field.spec, node.value)
        if node.op in ("=", "!="):
            equal = node.op == "="
            return lambda r, lk: (_stored(field.spec, field.read(r, lk)) == literal) == equal
        if field.spec.type == "boolean":
            raise SoqlError(
                "INVALID_FIELD",
                f"invalid operator on boolean field '{field.spec.name}': use = or !=",
            )
        compare = _COMPARE[node.op]

        def predicate(record: Record, lookup: Lookup) -> bool:
            stored = _stored(field.spec, field.read(record, lookup))
            return stored is not None and literal is not None and compare(stored, literal)

        return predicate


@dataclass(frozen=True)
class _Order:
    field: ResolvedField
    descending: bool
    nulls_last: bool


def _sort_value(field: FieldSpec, value: Any) -> Any:
    return str(value).lower() if field.type in _TEXT else value


@dataclass(frozen=True)
class Plan:
    """A query checked against the object's fields, ready to run on its records."""

    spec: SObjectSpec
    fields: tuple[ResolvedField, ...]
    predicate: Predicate | None
    order: tuple[_Order, ...]
    limit: int | None
    offset: int

    def run(self, records: list[Record], lookup: Lookup) -> list[Record]:
        """The matching stored records, ordered, after OFFSET and LIMIT."""
        predicate = self.predicate
        rows = [r for r in records if predicate is None or predicate(r, lookup)]
        if self.order:
            rows.sort(key=cmp_to_key(lambda a, b: self._compare(a, b, lookup)))
        rows = rows[self.offset :]
        return rows if self.limit is None else rows[: self.limit]

    def _compare(self, a: Record, b: Record, lookup: Lookup) -> int:
        for item in self.order:
            left, right = item.field.read(a, lookup), item.field.read(b, lookup)
            if left is None or right is None:
                if left is None and right is None:
                    continue
                # The null goes first unless NULLS LAST, whatever the direction.
                first_is_null = left is None
                return (1 if item.nulls_last else -1) * (1 if first_is_null else -1)
            lv, rv = _sort_value(item.field.spec, left), _sort_value(item.field.spec, right)
            if lv == rv:
                continue
            result = -1 if lv < rv else 1
            return -result if item.descending else result
        return 0

    def render(self, record: Record, version: str, lookup: Lookup) -> Record:
        """One row as REST returns it: ``attributes``, then the selected fields in order."""
        row = _attributes(self.spec, record, version)
        for field in self.fields:
            if field.via is None or field.parent is None:
                row[field.spec.name] = _render_value(field.spec, record, version, self.spec)
                continue
            relationship = field.via.relationship_name or field.via.name
            parent_id = record.get(field.via.name)
            parent = lookup(field.parent.name, parent_id) if parent_id else None
            if parent is None:
                row[relationship] = None
                continue
            nested = row.get(relationship) or _attributes(field.parent, parent, version)
            nested[field.spec.name] = _render_value(field.spec, parent, version, field.parent)
            row[relationship] = nested
        return row


def _attributes(spec: SObjectSpec, record: Record, version: str) -> Record:
    url = f"/services/data/v{version}/sobjects/{spec.name}/{record['Id']}"
    return {"attributes": {"type": spec.name, "url": url}}


def _render_value(field: FieldSpec, record: Record, version: str, spec: SObjectSpec) -> Any:
    value = record.get(field.name)
    if field.type == "base64":
        return f"/services/data/v{version}/sobjects/{spec.name}/{record['Id']}/{field.name}"
    if isinstance(value, datetime):
        return format_datetime(value)
    return value


def compile_query(query: Query, objects: Mapping[str, SObjectSpec]) -> Plan:
    """Check ``query`` against the catalogue: the :class:`Plan`, or :class:`SoqlError`."""
    spec = next((s for s in objects.values() if s.name.lower() == query.sobject.lower()), None)
    if spec is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{query.sobject}' is not supported. Check the object's API name "
            "(custom objects end in '__c').",
        )
    compiler = _Compiler(spec, objects)
    fields = tuple(compiler.field(path, purpose="select") for path in query.fields)
    predicate = compiler.condition(query.where) if query.where is not None else None
    order = tuple(_order(compiler, item) for item in query.order_by)
    return Plan(spec, fields, predicate, order, query.limit, query.offset or 0)


def _order(compiler: _Compiler, item: OrderItem) -> _Order:
    field = compiler.field(item.field, purpose="sorted")
    return _Order(field, item.descending, bool(item.nulls_last))
