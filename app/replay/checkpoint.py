"""A replay's checkpoint on disk: written atomically, read back to resume.

The file is replaced, never edited: the new content goes to a temporary file beside it,
which is flushed to the disk and renamed over the old one, and the folder is synced. A crash
leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from schemas.errors import ConfigurationError
from streams.replay import Checkpoint, ReplayJob

__all__ = ["fsync_dir", "load_checkpoint", "save_checkpoint"]


def fsync_dir(folder: Path) -> None:
    """Make renames and new files in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as file:
        json.dump(checkpoint.to_json(), file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
    fsync_dir(path.parent)


def load_checkpoint(path: Path, job: ReplayJob) -> Checkpoint | None:
    """The checkpoint of ``job`` at ``path``, None when there is none; a checkpoint of other
    arguments is refused (resuming it would mix two replays in one output)."""
    if not path.is_file():
        return None
    try:
        checkpoint = Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"cannot read the replay checkpoint {path} ({exc}); move it away and replay into a "
            "new output to start over"
        ) from exc
    if checkpoint.job != job.to_json():
        raise ConfigurationError(
            f"{path} belongs to another replay ({json.dumps(checkpoint.job, sort_keys=True)}); "
            "repeat that replay's arguments to resume it, or choose another output"
        )
    return checkpoint
