"""The pydantic models mirror the .avsc files exactly, and the .avsc files follow our rules.

Each model field's Python annotation is translated to the Avro type it must stand for and
compared with the schema: names, order, types, optionality, defaults, enum symbols (in order:
the symbol's index is what goes on the wire).
"""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo

import schemas.models as models
from schemas.models import AvroRecord
from schemas.registry import SCHEMAS_DIR

NAMESPACE = "deskstream"
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1

AVSC: dict[str, dict[str, Any]] = {
    path.name.removesuffix(".avsc"): json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(SCHEMAS_DIR.glob("*.avsc"))
}
RECORD_MODELS = {
    cls.avro_name: cls
    for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, AvroRecord) and cls is not AvroRecord
}
ENUMS = {
    f"{NAMESPACE}.{cls.__name__}": cls
    for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, StrEnum) and cls is not StrEnum
}


def test_every_named_type_has_exactly_one_python_type() -> None:
    records = {name for name, s in AVSC.items() if s["type"] == "record"}
    enums = {name for name, s in AVSC.items() if s["type"] == "enum"}
    assert set(RECORD_MODELS) == records
    assert set(ENUMS) == enums
    assert records | enums == set(AVSC)


# --- the translation from annotations to Avro ------------------------------------------------


def _int_kind(metadata: list[Any]) -> str:
    bounds = set()
    for item in metadata:
        for constraint in item.metadata if isinstance(item, FieldInfo) else [item]:
            bounds.add(getattr(constraint, "le", None))
    if INT32_MAX in bounds:
        return "int"
    if INT64_MAX in bounds:
        return "long"
    raise AssertionError("an unbounded int has no Avro type: use models.Int32 or models.Int64")


def avro_of(annotation: Any) -> Any:
    """The Avro type (in this test's comparable notation) a Python annotation stands for."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, metadata = args[0], list(args[1:])
        if inner is int:
            return _int_kind(metadata)
        return avro_of(inner)
    if origin in (types.UnionType, typing.Union):
        return ("union", frozenset(avro_of(a) for a in args))
    if origin is list:
        return ("array", avro_of(args[0]))
    if origin is dict:
        assert args[0] is str, "Avro map keys are strings"
        return ("map", avro_of(args[1]))
    if annotation is AwareDatetime:
        return "timestamp-micros"
    assert annotation is not datetime, "timestamps must be aware: use models.Timestamp"
    simple = {type(None): "null", bool: "boolean", float: "double", str: "string", bytes: "bytes"}
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return f"{NAMESPACE}.{annotation.__name__}"
    if isinstance(annotation, type) and issubclass(annotation, AvroRecord):
        return annotation.avro_name
    raise AssertionError(f"no Avro type for {annotation!r}")


def avro_in_schema(schema: Any) -> Any:
    """The same notation, from a schema as written in an .avsc file."""
    if isinstance(schema, list):
        return ("union", frozenset(avro_in_schema(b) for b in schema))
    if isinstance(schema, str):
        return schema if schema in PRIMITIVES or "." in schema else f"{NAMESPACE}.{schema}"
    if "logicalType" in schema:
        return schema["logicalType"]
    if schema["type"] == "array":
        return ("array", avro_in_schema(schema["items"]))
    if schema["type"] == "map":
        return ("map", avro_in_schema(schema["values"]))
    raise AssertionError(f"unexpected inline schema {schema!r}")


def test_translation_notices_a_wrong_annotation() -> None:
    # Guards the guard: the comparison below is only as good as this translation.
    assert avro_of(models.Int32) == "int" != avro_of(models.Int64)
    assert avro_of(models.Timestamp | None) == ("union", frozenset({"null", "timestamp-micros"}))
    assert avro_of(list[models.Actor]) == ("array", "deskstream.Actor")
    with pytest.raises(AssertionError, match="unbounded int"):
        avro_of(typing.Annotated[int, "no bounds"])
    with pytest.raises(AssertionError, match="aware"):
        avro_of(datetime)


# --- models against schemas -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORD_MODELS), ids=lambda n: n.split(".")[-1])
def test_model_matches_its_schema(name: str) -> None:
    model, schema = RECORD_MODELS[name], AVSC[name]
    assert f"{schema['namespace']}.{schema['name']}" == model.avro_name
    assert list(model.model_fields) == [f["name"] for f in schema["fields"]], "names or order"
    hints = typing.get_type_hints(model, include_extras=True)
    for field in schema["fields"]:
        info = model.model_fields[field["name"]]
        where = f"{name}.{field['name']}"
        assert avro_of(hints[field["name"]]) == avro_in_schema(field["type"]), where
        if "default" in field:
            assert not info.is_required(), f"{where} has a default in the schema"
            assert info.get_default(call_default_factory=True) == field["default"], where
        else:
            assert info.is_required(), f"{where} has no default in the schema"


@pytest.mark.parametrize("name", sorted(ENUMS), ids=lambda n: n.split(".")[-1])
def test_enum_matches_its_schema(name: str) -> None:
    assert [member.value for member in ENUMS[name]] == AVSC[name]["symbols"]


def test_top_level_models_are_the_eight_messages() -> None:
    assert {m.__name__ for m in models.TOP_LEVEL_MODELS} == {
        "Envelope",
        "RawDelivery",
        "QuarantineRecord",
        "SyncCommand",
        "WriteResult",
        "DeadLetter",
        "AuditRecord",
        "Timer",
    }
    assert set(typing.get_args(models.TopLevelModel)) == set(models.TOP_LEVEL_MODELS)


def test_models_are_frozen_and_refuse_unknown_fields() -> None:
    actor = models.Actor(kind=models.ActorKind.AI)
    with pytest.raises(ValueError, match="frozen"):
        actor.name = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="extra"):
        models.Actor(kind=models.ActorKind.AI, nickname="x")  # type: ignore[call-arg]


def _event(entity_type: models.EntityType, data: models.EntityData) -> models.Envelope:
    at = datetime(2026, 12, 5, tzinfo=UTC)
    return models.Envelope(
        event_id="e1",
        source=models.Source(
            platform=models.Platform.GENERIC,
            connector_id="c",
            entity_type=entity_type,
            entity_id="1",
            event_type="t",
            actor=models.Actor(kind=models.ActorKind.AI),
            occurred_at=at,
        ),
        op=models.Op.UPDATE,
        data=data,
        ingested_at=at,
    )


def test_a_handoff_is_an_event_of_the_handoff_entity_type_and_only_it_is() -> None:
    handoff = models.Handoff(case_id="c1", reason="asked")
    case = models.Case(status=models.CaseStatus.OPEN)
    assert _event(models.EntityType.HANDOFF, handoff).data == handoff
    assert _event(models.EntityType.HANDOFF, None).data is None  # a hand-off deleted
    # A conversation's messages are events of the conversation (Zendesk Conversations).
    message = models.Message(
        case_id="c1",
        author=models.Actor(kind=models.ActorKind.AGENT),
        public=True,
        created_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    assert _event(models.EntityType.CASE, message).data == message
    with pytest.raises(ValueError, match=r"data is a Handoff but source\.entity_type is 'case'"):
        _event(models.EntityType.CASE, handoff)
    with pytest.raises(ValueError, match=r"data is a Case but source\.entity_type is 'handoff'"):
        _event(models.EntityType.HANDOFF, case)


# --- conventions every .avsc follows ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AVSC), ids=lambda n: n.split(".")[-1])
def test_schema_conventions(name: str) -> None:
    schema = AVSC[name]
    assert schema["namespace"] == NAMESPACE
    assert f"{NAMESPACE}.{schema['name']}" == name, "file named by the type's full name"
    assert schema.get("doc"), f"{name} needs a doc string"
    if schema["type"] == "enum":
        # Without a default, adding a symbol later breaks every older reader.
        assert schema.get("default") in schema["symbols"], f"{name} needs a default symbol"
        return
    for field in schema["fields"]:
        where, type_ = f"{name}.{field['name']}", field["type"]
        assert field.get("doc"), f"{where} needs a doc string"
        if isinstance(type_, list) and "null" in type_:
            assert type_[0] == "null", f"{where}: null first, so the default can be null"
            assert field.get("default", "missing") is None, f"{where}: default null"
        if isinstance(type_, dict) and type_["type"] in ("array", "map"):
            assert field.get("default") == ([] if type_["type"] == "array" else {}), where
        is_time = field["name"] == "at" or field["name"].endswith("_at")
        branches = type_ if isinstance(type_, list) else [type_]
        timestamps = [b for b in branches if isinstance(b, dict) and "logicalType" in b]
        assert is_time == bool(timestamps), f"{where}: *_at fields and only they are timestamps"
        for branch in timestamps:
            assert branch == {"type": "long", "logicalType": "timestamp-micros"}, where


def test_released_snapshot_folder_layout() -> None:
    released = SCHEMAS_DIR / "released"
    versions = sorted(p.name for p in released.iterdir() if p.is_dir())
    assert versions, "at least one released version"
    assert all(v.startswith("v") and v[1:].isdigit() for v in versions)
    for version in versions:
        assert all(p.suffix == ".avsc" for p in (released / version).iterdir()), version
