"""Structural Avro schema compatibility, by the resolution rules of the Avro specification.

A reader schema can read data written with a writer schema when, recursively:

- primitives are equal or the writer's promotes to the reader's: int -> long, float, double;
  long -> float, double; float -> double; string <-> bytes;
- records have the same full name (or the writer's is one of the reader's aliases), and every
  reader field either exists in the writer (by name or alias) with a readable type, or has a
  default; writer fields the reader does not know are skipped;
- enums match by name, and every writer symbol is a reader symbol unless the reader enum has a
  default symbol to map unknown ones to; fixed types match by name and size;
- arrays and maps have readable items/values;
- a writer union is readable when each of its branches is; a reader union reads a non-union
  writer when at least one of its branches does.

Deskstream adds one stricter rule: a changed ``logicalType`` on the same primitive (micros read
as millis) is reported, because it silently reinterprets every value.

``full_problems(old, new)`` checks both directions (new code reads old data, old code reads new
data): full compatibility is what lets producers and consumers upgrade in any order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from schemas.errors import SchemaError

__all__ = ["full_problems", "load_named_types", "pair_problems", "reader_problems"]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}
_NAMED = {"record", "error", "enum", "fixed"}

Types = Mapping[str, Any]


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _normalize(schema: Any, namespace: str | None, found: dict[str, Any]) -> Any:
    """Copy of ``schema`` with every name fully qualified; named types collected in ``found``."""
    if isinstance(schema, str):
        return schema if schema in _PRIMITIVES else _full_name(schema, namespace)
    if isinstance(schema, list):
        return [_normalize(branch, namespace, found) for branch in schema]
    kind = schema["type"]
    if kind in _NAMED:
        name = _full_name(schema["name"], schema.get("namespace", namespace))
        inner_ns = name.rpartition(".")[0] or None
        out = dict(schema, name=name)
        out.pop("namespace", None)
        out["aliases"] = [_full_name(a, inner_ns) for a in schema.get("aliases", [])]
        if kind in ("record", "error"):
            out["fields"] = [
                dict(f, type=_normalize(f["type"], inner_ns, found)) for f in schema["fields"]
            ]
        found[name] = out
        return name
    if kind == "array":
        return dict(schema, items=_normalize(schema["items"], namespace, found))
    if kind == "map":
        return dict(schema, values=_normalize(schema["values"], namespace, found))
    # {"type": "long", "logicalType": ...}, {"type": "SomeName"}, {"type": [...]}
    return dict(schema, type=_normalize(kind, namespace, found))


def load_named_types(folder: Path) -> dict[str, Any]:
    """Every named type defined in ``folder/*.avsc``, by full name, names fully qualified."""
    found: dict[str, Any] = {}
    for path in sorted(folder.glob("*.avsc")):
        try:
            _normalize(json.loads(path.read_text(encoding="utf-8")), None, found)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SchemaError(f"cannot read Avro schema {path}: {exc}") from exc
    return found


class _Checker:
    def __init__(self, reader_types: Types, writer_types: Types) -> None:
        self.reader_types = reader_types
        self.writer_types = writer_types
        # Named pairs already under comparison: assume compatible, which ends recursion.
        self.in_progress: set[tuple[str, str]] = set()

    @staticmethod
    def _deref(schema: Any, types: Types, side: str) -> Any:
        if isinstance(schema, dict) and set(schema) == {"type"}:
            schema = schema["type"]
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in types:
                raise SchemaError(f"{side} schema names {schema}, which is not defined")
            return types[schema]
        return schema

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        return schema if isinstance(schema, str) else str(schema["type"])

    @staticmethod
    def _label(schema: Any) -> str:
        if isinstance(schema, dict):
            return str(schema.get("name") or schema.get("logicalType") or schema["type"])
        return "union" if isinstance(schema, list) else str(schema)

    def check(self, reader: Any, writer: Any, path: str) -> list[str]:
        r = self._deref(reader, self.reader_types, "reader")
        w = self._deref(writer, self.writer_types, "writer")
        if isinstance(w, list):
            return [
                problem
                for branch in w
                for problem in self.check(r, branch, f"{path}<{self._label(branch)}>")
            ]
        if isinstance(r, list):
            if any(not self.check(branch, w, path) for branch in r):
                return []
            # The branch of the same name explains best why it does not fit (a field deep down).
            name = w.get("name") if isinstance(w, dict) else None
            for branch in (self._deref(b, self.reader_types, "reader") for b in r):
                if name and isinstance(branch, dict) and branch.get("name") == name:
                    return self.check(branch, w, path)
            branches = ", ".join(self._label(b) for b in r)
            return [f"{path}: no branch of the reader union [{branches}] reads {self._label(w)}"]
        rk, wk = self._kind(r), self._kind(w)
        if rk in _PRIMITIVES or wk in _PRIMITIVES:
            return self._primitive(r, w, rk, wk, path)
        if rk != wk:
            return [f"{path}: writer {wk} {self._label(w)} cannot be read as {rk}"]
        if rk in ("record", "error", "enum", "fixed"):
            name_ok = w["name"] == r["name"] or w["name"] in r.get("aliases", [])
            if not name_ok:
                return [f"{path}: writer {rk} {w['name']} cannot be read as {r['name']}"]
        if rk == "array":
            return self.check(r["items"], w["items"], f"{path}[]")
        if rk == "map":
            return self.check(r["values"], w["values"], f"{path}{{}}")
        if rk == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                return [
                    f"{path}: enum {r['name']} lacks writer symbols {missing} and has no default"
                ]
            return []
        if rk == "fixed":
            return [] if r["size"] == w["size"] else [f"{path}: fixed size changed"]
        return self._record(r, w, path)

    def _primitive(self, r: Any, w: Any, rk: str, wk: str, path: str) -> list[str]:
        if rk != wk and (wk, rk) not in _PROMOTIONS:
            return [f"{path}: writer {self._label(w)} cannot be read as {self._label(r)}"]
        r_logical = r.get("logicalType") if isinstance(r, dict) else None
        w_logical = w.get("logicalType") if isinstance(w, dict) else None
        if rk == wk and r_logical != w_logical:
            return [f"{path}: logical type changed from {w_logical} to {r_logical}"]
        return []

    def _record(self, r: Any, w: Any, path: str) -> list[str]:
        key = (r["name"], w["name"])
        if key in self.in_progress:
            return []
        self.in_progress.add(key)
        try:
            writer_fields = {f["name"]: f for f in w["fields"]}
            problems: list[str] = []
            for field in r["fields"]:
                names = [field["name"], *field.get("aliases", [])]
                source = next((writer_fields[n] for n in names if n in writer_fields), None)
                where = f"{path}.{field['name']}"
                if source is not None:
                    problems.extend(self.check(field["type"], source["type"], where))
                elif "default" not in field:
                    problems.append(f"{where}: not in the writer's schema and has no default")
            return problems
        finally:
            self.in_progress.discard(key)


def reader_problems(
    reader: Any, writer: Any, reader_types: Types, writer_types: Types, *, path: str = ""
) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can.

    Schemas are normalized (fully qualified) as ``load_named_types`` returns them; a schema
    may be a full name from its side's types.
    """
    root = path or (reader if isinstance(reader, str) else "schema")
    return _Checker(reader_types, writer_types).check(reader, writer, root)


def full_problems(old: Path, new: Path, *, required: Iterable[str] = ()) -> list[str]:
    """Problems that stop ``new`` from being fully compatible with ``old`` (empty: fine).

    Every named type defined in both folders is checked both ways; each name in ``required``
    (the top-level messages) must still exist in ``new``.
    """
    old_types, new_types = load_named_types(old), load_named_types(new)
    problems = [f"{name}: removed" for name in required if name not in new_types]
    for name in sorted(set(old_types) & set(new_types)):
        for direction, reader, writer, r_types, w_types in (
            ("new reads old", new_types[name], old_types[name], new_types, old_types),
            ("old reads new", old_types[name], new_types[name], old_types, new_types),
        ):
            for problem in reader_problems(reader, writer, r_types, w_types, path=name):
                problems.append(f"{direction}: {problem}")
    return problems


def pair_problems(new: Any, old: Any) -> list[str]:
    """Both directions between two self-contained schemas (JSON values, as a registry holds
    them): why ``new`` cannot read ``old``'s data, then why ``old`` cannot read ``new``'s."""
    new_types: dict[str, Any] = {}
    old_types: dict[str, Any] = {}
    try:
        new_root = _normalize(new, None, new_types)
        old_root = _normalize(old, None, old_types)
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"not an Avro schema: {type(exc).__name__}: {exc}") from exc
    return [
        f"{direction}: {problem}"
        for direction, reader, writer, r_types, w_types in (
            ("new reads registered", new_root, old_root, new_types, old_types),
            ("registered reads new", old_root, new_root, old_types, new_types),
        )
        for problem in reader_problems(reader, writer, r_types, w_types)
    ]
