"""Schema evolution: the current schemas stay fully compatible with every released version.

If a test here fails after a schema edit, the edit would break producers or consumers still on
the released version: give the new field a default, keep the enum symbol, or widen instead of
narrowing a type. The negative tests prove the checker notices each kind of breaking change,
and cross-check its verdict against fastavro's own schema resolution on real data.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer

from schemas._convert import to_datum_for, to_model_for
from schemas.codec import HEADER_SIZE, MAGIC, AvroCodec, encode
from schemas.compat import full_problems, load_named_types, reader_problems
from schemas.errors import SchemaError
from schemas.models import TOP_LEVEL_MODELS
from schemas.registry import (
    RELEASED_DIR,
    SCHEMAS_DIR,
    SchemaRegistry,
    get_registry,
    load_parsed,
    schema_fingerprint,
)
from tests.schemas.examples import EXAMPLES

TOP_LEVEL = [m.avro_name for m in TOP_LEVEL_MODELS]
VERSIONS = sorted(p.name for p in RELEASED_DIR.iterdir() if p.is_dir())

#: Fingerprints of v1 as released. Released schemas are frozen: editing released/v1 instead of
#: the current schemas would make the compatibility test compare the wrong things.
V1_FINGERPRINTS = {
    "deskstream.AuditRecord": "01a9e15ae437b3ef",
    "deskstream.DeadLetter": "f0bbc5d21bb33037",
    "deskstream.Envelope": "58c89c041ed2390a",
    "deskstream.QuarantineRecord": "9c34e2ecc7de8d61",
    "deskstream.RawDelivery": "bfb0ac4fcdde84fa",
    "deskstream.SyncCommand": "1569f4f64c382d12",
    "deskstream.WriteResult": "f905c4b4d8ae8ff8",
}


@pytest.mark.parametrize("version", VERSIONS)
def test_current_schemas_are_fully_compatible_with_released(version: str) -> None:
    assert full_problems(RELEASED_DIR / version, SCHEMAS_DIR, required=TOP_LEVEL) == []


def test_released_v1_is_frozen() -> None:
    # Messages added after v1 (deskstream.Timer) have no v1 schema to freeze.
    released = {
        name: schema_fingerprint(load_parsed(RELEASED_DIR / "v1", name)).hex()
        for name in TOP_LEVEL
        if (RELEASED_DIR / "v1" / f"{name}.avsc").is_file()
    }
    assert released == V1_FINGERPRINTS


@pytest.mark.parametrize("version", VERSIONS)
def test_every_released_fingerprint_is_readable(version: str) -> None:
    known = get_registry().by_fingerprint
    for name in TOP_LEVEL:
        if (RELEASED_DIR / version / f"{name}.avsc").is_file():
            fingerprint = schema_fingerprint(load_parsed(RELEASED_DIR / version, name))
            assert fingerprint in known, f"{version} {name}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("label", sorted(EXAMPLES))
def test_data_written_with_released_schema_reads_with_current(version: str, label: str) -> None:
    # Empirical side of the structural check: fastavro's own resolution, on real data.
    example = EXAMPLES[label]
    if not (RELEASED_DIR / version / f"{example.avro_name}.avsc").is_file():
        pytest.skip(f"{example.avro_name} was added after {version}: no older data to read")
    current = get_registry().current[example.avro_name]
    released = load_parsed(RELEASED_DIR / version, example.avro_name)
    datum = schemaless_reader(
        BytesIO(_body(released, to_datum_for(current)(example))),
        released,
        current.parsed,
        return_record_name=True,
        return_record_name_override=True,
    )
    decoded = to_model_for(current)(datum)
    assert type(decoded) is type(example)
    # Fields the released version already had keep their values.
    for field in released["fields"]:
        assert getattr(decoded, field["name"]) == getattr(example, field["name"]), field["name"]


def test_codec_reads_a_message_from_an_older_producer(tmp_path: Path) -> None:
    # A "v0" Envelope without link_id and with a field the current schema dropped: the
    # registry knows its fingerprint, and the codec resolves it into the current model.
    old = tmp_path / "released" / "v0"
    shutil.copytree(RELEASED_DIR / VERSIONS[0], old)
    with _edited(old, "deskstream.Envelope") as envelope:
        envelope["fields"] = [f for f in envelope["fields"] if f["name"] != "link_id"]
        envelope["fields"].append({"name": "legacy", "type": "string", "doc": "dropped later"})
    registry = SchemaRegistry(released_dir=tmp_path / "released")
    v0 = next(e for e in registry.by_fingerprint.values() if e.version == "v0")
    assert v0.name == "deskstream.Envelope"
    assert v0.fingerprint != registry.current["deskstream.Envelope"].fingerprint
    example = EXAMPLES["Envelope-message"]
    datum = {**to_datum_for(registry.current[v0.name])(example), "legacy": "x"}
    message = MAGIC + v0.fingerprint + _body(v0.parsed, datum)
    decoded = AvroCodec(registry).decode(message)
    assert decoded == example.model_copy(update={"link_id": None})
    # Today's readers without that release do not know the fingerprint, and say so.
    with pytest.raises(SchemaError, match="unknown schema fingerprint"):
        AvroCodec(get_registry()).decode(message)


# --- the checker notices breaking changes -----------------------------------------------------


def _field(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in record["fields"] if f["name"] == name)


def _add_required_field(folder: Path) -> None:
    with _edited(folder, "deskstream.Envelope") as envelope:
        envelope["fields"].append({"name": "tenant", "type": "string", "doc": "no default"})


def _add_optional_field(folder: Path) -> None:
    with _edited(folder, "deskstream.Envelope") as envelope:
        new = {"name": "tenant", "type": ["null", "string"], "default": None, "doc": "ok"}
        envelope["fields"].append(new)


def _remove_field(name: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        with _edited(folder, "deskstream.Envelope") as envelope:
            envelope["fields"] = [f for f in envelope["fields"] if f["name"] != name]

    return mutate


def _op_symbols(symbols: list[str], *, keep_default: bool) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        with _edited(folder, "deskstream.Op") as op:
            op["symbols"] = symbols
            if not keep_default:
                del op["default"]

    return mutate


def _retype(record: str, field: str, new_type: Any) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        with _edited(folder, record) as schema:
            _field(schema, field)["type"] = new_type

    return mutate


def _drop_handoff_branch(folder: Path) -> None:
    for record in ("deskstream.Envelope", "deskstream.SyncCommand"):
        with _edited(folder, record) as schema:
            _field(schema, "data")["type"].remove("Handoff")


def _rename_actor(*, alias: bool) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        for path in folder.glob("*.avsc"):
            path.write_text(path.read_text(encoding="utf-8").replace('"Actor"', '"Person"'))
        (folder / "deskstream.Actor.avsc").rename(folder / "deskstream.Person.avsc")
        if alias:
            with _edited(folder, "deskstream.Person") as person:
                person["aliases"] = ["deskstream.Actor"]

    return mutate


def _remove_top_level(folder: Path) -> None:
    (folder / "deskstream.DeadLetter.avsc").unlink()


MICROS = {"type": "long", "logicalType": "timestamp-micros"}
# id, mutation, problem expected when new code reads old data, when old code reads new data,
# and whether fastavro itself fails to read some old example with the new schema.
MUTATIONS = [
    pytest.param(
        _add_required_field,
        "tenant: not in the writer's schema",
        None,
        True,
        id="new-field-without-default",
    ),
    pytest.param(_add_optional_field, None, None, False, id="new-field-with-default"),
    pytest.param(_remove_field("link_id"), None, None, False, id="removed-field-with-default"),
    pytest.param(
        _remove_field("event_id"),
        None,
        "event_id: not in the writer's schema",
        False,
        id="removed-field-without-default",
    ),
    pytest.param(
        _op_symbols(["create", "update"], keep_default=False),
        r"lacks writer symbols \['delete'\] and has no default",
        None,
        True,
        id="removed-enum-symbol-without-default",
    ),
    pytest.param(
        _op_symbols(["create", "update", "delete", "merge"], keep_default=True),
        None,
        None,
        False,
        # Older readers map "merge" to their enum's default: that is what defaults are for.
        id="added-enum-symbol",
    ),
    pytest.param(
        _retype("deskstream.Actor", "id", ["null", "long"]),
        "Actor.id<string>",
        "Actor.id<long>",
        True,
        id="changed-type",
    ),
    pytest.param(
        _retype("deskstream.SyncCommand", "attempt", "long"),
        None,
        "attempt: writer long cannot be read as int",
        False,
        id="promoted-int-to-long",
    ),
    pytest.param(
        _retype("deskstream.Attachment", "size_bytes", ["null", "int"]),
        r"size_bytes<long>: no branch of the reader union \[null, int\] reads long",
        None,
        True,
        id="narrowed-long-to-int",
    ),
    pytest.param(
        _retype("deskstream.Source", "entity_id", "bytes"), None, None, False, id="string-to-bytes"
    ),
    pytest.param(
        _drop_handoff_branch,
        r"data<deskstream.Handoff>: no branch",
        None,
        True,
        id="removed-union-branch",
    ),
    pytest.param(
        _rename_actor(alias=False),
        "cannot be read as deskstream.Person",
        "cannot be read as deskstream.Actor",
        True,
        id="renamed-record",
    ),
    pytest.param(
        _rename_actor(alias=True),
        None,
        "cannot be read as deskstream.Actor",
        False,
        id="renamed-record-with-alias",
    ),
    # Avro itself would read micros as millis without a word: the one rule stricter than Avro.
    pytest.param(
        _retype("deskstream.AuditRecord", "at", {**MICROS, "logicalType": "timestamp-millis"}),
        "logical type changed",
        "logical type changed",
        False,
        id="changed-logical-type",
    ),
    pytest.param(_remove_top_level, "DeadLetter: removed", None, None, id="removed-top-level"),
]


@pytest.mark.parametrize(("mutate", "backward", "forward", "fastavro_fails"), MUTATIONS)
def test_checker_verdicts(
    tmp_path: Path,
    mutate: Callable[[Path], None],
    backward: str | None,
    forward: str | None,
    fastavro_fails: bool | None,
) -> None:
    new = _mutated(tmp_path, mutate)
    problems = full_problems(SCHEMAS_DIR, new, required=TOP_LEVEL)
    _expect([p for p in problems if not p.startswith("old reads new")], backward)
    _expect([p for p in problems if p.startswith("old reads new")], forward)


@pytest.mark.parametrize(
    ("mutate", "backward", "forward", "fastavro_fails"),
    [m for m in MUTATIONS if m.values[3] is not None],
)
def test_fastavro_resolution_agrees_on_old_data(
    tmp_path: Path,
    mutate: Callable[[Path], None],
    backward: str | None,
    forward: str | None,
    fastavro_fails: bool | None,
) -> None:
    new = _mutated(tmp_path, mutate)
    failed = []
    for label, example in EXAMPLES.items():
        writer = get_registry().current[example.avro_name]
        reader = load_parsed(new, example.avro_name)
        try:
            schemaless_reader(BytesIO(encode(example)[HEADER_SIZE:]), writer.parsed, reader)
        except Exception:
            failed.append(label)
    assert bool(failed) == fastavro_fails, failed


def test_reader_problems_on_plain_schemas() -> None:
    types: dict[str, Any] = {}
    assert reader_problems("long", "int", types, types) == []
    assert reader_problems("int", "long", types, types) == [
        "int: writer long cannot be read as int"
    ]
    assert reader_problems(["null", "double"], "float", types, types) == []
    assert reader_problems("string", ["null", "string"], types, types) == [
        "string<null>: writer null cannot be read as string"
    ]
    strict_enum = {"type": "enum", "name": "E", "symbols": ["a"]}
    wider_enum = {"type": "enum", "name": "E", "symbols": ["a", "b"]}
    assert reader_problems(strict_enum, wider_enum, types, types) == [
        "schema: enum E lacks writer symbols ['b'] and has no default"
    ]
    assert reader_problems({**strict_enum, "default": "a"}, wider_enum, types, types) == []
    current = load_named_types(SCHEMAS_DIR)
    assert reader_problems("deskstream.Envelope", "deskstream.Envelope", current, current) == []


def _expect(problems: list[str], pattern: str | None) -> None:
    if pattern is None:
        assert problems == []
    else:
        assert any(re.search(pattern, p) for p in problems), problems


def _mutated(tmp_path: Path, mutate: Callable[[Path], None]) -> Path:
    folder = tmp_path / "new"
    shutil.copytree(
        SCHEMAS_DIR, folder, ignore=shutil.ignore_patterns("released", "*.py", "__pycache__")
    )
    mutate(folder)
    return folder


@contextlib.contextmanager
def _edited(folder: Path, name: str) -> Iterator[dict[str, Any]]:
    path = folder / f"{name}.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    yield schema
    path.write_text(json.dumps(schema, indent=2), encoding="utf-8")


def _body(schema: Any, datum: Any) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, schema, datum)
    return buffer.getvalue()
