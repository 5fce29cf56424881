"""Exported events as Parquet files: ``date=YYYY-MM-DD/entity_type=<type>/part-NNNNNN.parquet``.

``date`` is the UTC day of the record's Kafka timestamp (the clock ``--from``/``--to`` use).
Rows are buffered and written in numbered flushes: flush N writes one ``part-N`` file into
each folder it has rows for, each first under a temporary name, synced, then renamed. The
checkpoint saved after the flush says N is complete; on resume, part files numbered above the
checkpoint's (a flush cut short by a crash) and temporary files are deleted before reading
on from the checkpoint's offsets. Every row is therefore in exactly one kept file.
"""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from app.replay.checkpoint import fsync_dir
from app.replay.columns import EnvelopeColumns
from schemas.errors import ConfigurationError
from streams.replay import Checkpoint

__all__ = ["CHECKPOINT_NAME", "ParquetOutput", "day_of"]

#: the checkpoint beside the files (DuckDB's ``**/*.parquet`` glob does not see it)
CHECKPOINT_NAME = "_replay_checkpoint.json"
_PART = re.compile(r"^part-(\d+)\.parquet$")
_TEMPORARY = ".parquet.tmp"


_DAY_MS = 24 * 60 * 60 * 1000


@functools.lru_cache(maxsize=64)
def _day(number: int) -> str:
    return datetime.fromtimestamp(number * _DAY_MS / 1000, UTC).strftime("%Y-%m-%d")


def day_of(timestamp_ms: int) -> str:
    """The UTC day of a Kafka timestamp, ``YYYY-MM-DD`` (one strftime per day, not per row)."""
    return _day(timestamp_ms // _DAY_MS)


class ParquetOutput:
    def __init__(self, folder: Path, columns: EnvelopeColumns) -> None:
        self.folder = folder
        self.columns = columns
        self.checkpoint_path = folder / CHECKPOINT_NAME
        self._rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.buffered = 0

    def prepare(self, checkpoint: Checkpoint | None) -> int:
        """Make the folder hold exactly what ``checkpoint`` says was written; returns how
        many files were removed (a flush a crash cut short)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = checkpoint.flushes if checkpoint is not None else 0
        parts = [p for p in self.folder.rglob("part-*.parquet") if _PART.match(p.name)]
        if checkpoint is None and parts:
            raise ConfigurationError(
                f"{self.folder} holds Parquet files but no replay checkpoint ({CHECKPOINT_NAME}); "
                "replaying into it could duplicate rows: choose an empty --out folder"
            )
        removed = 0
        for path in [*parts, *self.folder.rglob(f"*{_TEMPORARY}")]:
            match = _PART.match(path.name)
            if match is None or int(match.group(1)) > kept:
                path.unlink()
                removed += 1
        return removed

    def add(self, row: dict[str, Any], timestamp_ms: int) -> None:
        self._rows[(day_of(timestamp_ms), str(row["entity_type"]))].append(row)
        self.buffered += 1

    def flush(self, number: int) -> int:
        """Write the buffered rows as flush ``number``; returns the rows written."""
        written = 0
        folders = set()
        for (day, entity_type), rows in sorted(self._rows.items()):
            folder = self.folder / f"date={day}" / f"entity_type={entity_type}"
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"part-{number:06d}.parquet"
            temporary = final.with_name(final.name + ".tmp")
            table = pa.Table.from_pylist(rows, schema=self.columns.schema)
            pq.write_table(table, temporary, compression="zstd")
            fd = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            temporary.replace(final)
            folders.add(folder)
            written += len(rows)
        for folder in folders:
            fsync_dir(folder)
        self._rows.clear()
        self.buffered = 0
        return written
