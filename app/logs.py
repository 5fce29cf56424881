"""Structured logs: one JSON object per line, so log pipelines index fields without regexes.

Messages already carry ``key=value`` pairs (``webhook not stored connector=x delivery=y``);
the JSON wrapper adds time, level, logger and any exception. Secrets never reach a log call:
settings hold them as ``SecretStr`` and error messages are built without them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at warning; one line per state change is enough.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
