"""Exported events as Parquet (``app.replay.columns``, ``app.replay.parquet``), without a
broker: the columns an analyst queries, the folder layout, and a resume's cleanup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from app.replay.columns import PROVENANCE, EnvelopeColumns
from app.replay.parquet import ParquetOutput
from schemas.codec import decode_dict, encode, writer_schema_id
from schemas.errors import ConfigurationError
from streams.replay import Checkpoint
from tests.schemas.examples import EXAMPLES

LABELS = ["Envelope-case", "Envelope-contact", "Envelope-message", "Envelope-handoff"]
DAY_MS = 24 * 60 * 60 * 1000
T0_MS = 1_795_000_000_000  # 2026-11-18


def _row(columns: EnvelopeColumns, label: str, offset: int) -> tuple[dict[str, Any], int]:
    data = encode(EXAMPLES[label])
    _, envelope = decode_dict(data)
    timestamp = T0_MS + (offset // len(LABELS) % 2) * DAY_MS
    provenance = {
        "kafka_topic": "deskstream.events",
        "kafka_partition": 0,
        "kafka_offset": offset,
        "kafka_timestamp": timestamp,
        "kafka_key": f"key-{offset}",
        "schema_id": writer_schema_id(data),
    }
    return columns.row(envelope, provenance), timestamp


def _checkpoint(flushes: int) -> Checkpoint:
    return Checkpoint(job={}, spans={}, run_id="r", flushes=flushes)


def test_every_branch_of_data_has_its_struct_column_and_analysts_can_query_it(
    tmp_path: Path,
) -> None:
    columns = EnvelopeColumns()
    names = columns.schema.names
    assert names[: len(PROVENANCE)] == [name for name, _ in PROVENANCE]
    assert {"data_contact", "data_case", "data_message", "data_handoff"} <= set(names)
    assert {"platform", "entity_type", "event_type", "actor", "link_id"} <= set(names)

    out = ParquetOutput(tmp_path / "out", columns)
    out.prepare(None)
    for offset, label in enumerate(LABELS * 3):
        out.add(*_row(columns, label, offset))
    assert out.flush(1) == 12

    query = """
        SELECT entity_type, count(*) AS n, count(DISTINCT date) AS days,
               any_value(data_case.status) AS status,
               any_value(data_case.custom_fields['360013']) AS custom,
               any_value(data_handoff.transcript[1].text) AS said,
               any_value(actor.email) AS actor, any_value(schema_id) AS schema_id
        FROM read_parquet($glob, hive_partitioning=true)
        GROUP BY entity_type ORDER BY entity_type
    """
    rows = duckdb.execute(query, {"glob": f"{tmp_path}/out/**/*.parquet"}).fetchall()
    by_type = {r[0]: r[1:] for r in rows}
    assert {t: v[0] for t, v in by_type.items()} == {
        "case": 3,
        "contact": 3,
        "handoff": 3,
        "message": 3,
    }
    assert all(v[1] == 2 for v in by_type.values())  # two days, one folder each
    case = by_type["case"]
    assert case[2:4] == ("on_hold", "3")  # a custom field value is JSON text
    assert by_type["handoff"][4] == "I can't get in"
    assert case[5] == "zoe@example.com"
    assert case[6] == encode(EXAMPLES["Envelope-case"])[2:10].hex()
    files = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in out.folder.rglob("*.parquet")
    )
    assert files[0] == "date=2026-11-18/entity_type=case/part-000001.parquet"
    assert len(files) == 8  # 2 days x 4 entity types


def test_resume_removes_the_files_of_a_flush_the_checkpoint_does_not_name(tmp_path: Path) -> None:
    columns = EnvelopeColumns()
    out = ParquetOutput(tmp_path, columns)
    out.prepare(None)
    out.add(*_row(columns, "Envelope-case", 0))
    out.flush(1)
    out.add(*_row(columns, "Envelope-case", 1))
    out.add(*_row(columns, "Envelope-message", 2))
    out.flush(2)  # written, but the crash came before its checkpoint
    (tmp_path / "date=2026-11-18" / "entity_type=case" / "part-000003.parquet.tmp").write_bytes(
        b"half"
    )
    again = ParquetOutput(tmp_path, columns)
    assert again.prepare(_checkpoint(1)) == 3
    left = [p.name for p in tmp_path.rglob("part-*")]
    assert left == ["part-000001.parquet"]


def test_an_output_folder_with_files_but_no_checkpoint_is_refused(tmp_path: Path) -> None:
    columns = EnvelopeColumns()
    out = ParquetOutput(tmp_path, columns)
    out.add(*_row(columns, "Envelope-case", 0))
    out.flush(1)
    with pytest.raises(ConfigurationError, match="empty --out folder"):
        ParquetOutput(tmp_path, columns).prepare(None)


def test_the_readme_query_runs_on_exported_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Analytics replay", 1)[1]
    query = section.split("```sql\n", 1)[1].split("```", 1)[0]
    assert "read_parquet('out/**/*.parquet', hive_partitioning=true)" in query
    columns = EnvelopeColumns()
    out = ParquetOutput(tmp_path / "out", columns)
    out.prepare(None)
    for offset, label in enumerate(LABELS * 2):
        out.add(*_row(columns, label, offset))
    out.flush(1)
    monkeypatch.chdir(tmp_path)  # the query names the folder relative to where it runs
    rows = duckdb.execute(query).fetchall()
    assert sum(r[3] for r in rows) == 8
    assert {r[2] for r in rows} == {"case", "contact", "message", "handoff"}
