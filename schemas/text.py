"""Text that Avro and JSON can carry: lone surrogates out, the places they were named.

A Python ``str`` may hold a lone surrogate (U+D800..U+DFFF): ``json.loads`` turns the JSON
escape ``"\\ud800"`` into one, and aiohttp decodes a header's non-UTF-8 bytes into them
(``surrogateescape``). UTF-8 cannot encode them, so fastavro (and any strict JSON writer)
fails on the whole record, and a record that cannot be written stalls its partition. A paired
escape (``"\\ud83d\\ude00"``) is decoded into one code point, so every surrogate left in a
``str`` is a lone one and is replaced by U+FFFD, the Unicode replacement character.

    safe_text(text)          the text, each lone surrogate replaced
    safe_record(record)      a model with every string made safe, and the field paths changed
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["REPLACEMENT", "is_safe_text", "safe_record", "safe_text"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")

M = TypeVar("M", bound=BaseModel)


def is_safe_text(text: str) -> bool:
    """True when UTF-8 (so Avro and JSON) can carry ``text`` as it is."""
    return _SURROGATE.search(text) is None


def safe_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text)


def safe_record(record: M) -> tuple[M, list[str]]:
    """``record`` with every string made safe (a copy only when something changed), and the
    dotted paths of the fields that were changed, for the log line that keeps the reason."""
    repaired: list[str] = []
    clean = _walk(record, "", repaired)
    return clean, repaired


def _walk(value: Any, path: str, repaired: list[str]) -> Any:
    if isinstance(value, str):
        if is_safe_text(value):
            return value
        repaired.append(path or "(value)")
        return safe_text(value)
    if isinstance(value, BaseModel):
        changes = {}
        for name in type(value).model_fields:
            current = getattr(value, name)
            cleaned = _walk(current, f"{path}.{name}" if path else name, repaired)
            if cleaned is not current:
                changes[name] = cleaned
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, list):
        items = [_walk(item, f"{path}[{n}]", repaired) for n, item in enumerate(value)]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        pairs = {
            _walk(key, f"{path}.<key>", repaired): _walk(
                item, f"{path}.{safe_text(str(key))}", repaired
            )
            for key, item in value.items()
        }
        changed = any(k not in value or value[k] is not v for k, v in pairs.items())
        return pairs if changed else value
    return value
