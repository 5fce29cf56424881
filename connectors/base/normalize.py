"""The normalising side of a connector: a raw delivery in, canonical events out.

A normaliser is a pure function of the delivery. It returns zero or more canonical events (a
Zendesk delivery can carry several changes; a ``ping`` carries none) or raises
``SkippableRecordError`` with a reason an operator can act on, and the delivery goes to
quarantine with it. Event ids are derived from the delivery, never random, so a redelivered
webhook yields the very same events and downstream dedupe drops them.
"""

from __future__ import annotations

import abc
import json
import math
import re
import uuid
from typing import Any, ClassVar

from pydantic import ValidationError

from connectors.base.settings import ConnectorSettings
from schemas.errors import SkippableRecordError
from schemas.ids import uuid5_text
from schemas.models import Envelope, RawDelivery

__all__ = [
    "EVENT_ID_NAMESPACE",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_DIGITS",
    "Normaliser",
    "check_json_bounds",
    "event_id",
    "parse_json",
    "validation_problems",
]

#: uuid5 namespace for canonical event ids (fixed forever: changing it re-ids every event)
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1a52-5e0b-4d33-9d0e-2f3b6a7c9e10")


def event_id(connector_id: str, source_event_id: str, index: int = 0) -> str:
    """Deterministic event id: the same source event always maps to the same id.

    ``uuid.uuid5(EVENT_ID_NAMESPACE, name)`` as text (``schemas.ids``)."""
    return uuid5_text(EVENT_ID_NAMESPACE, f"{connector_id}\x1f{source_event_id}\x1f{index}")


#: No platform nests a webhook deeper than about 15 levels; 64 leaves room and keeps every
#: recursive walk (the JSON scanner, pydantic, our own) far from Python's recursion limit.
MAX_JSON_DEPTH = 64
#: Digits in one JSON number: ids and amounts have at most 20. ``int()`` is quadratic in the
#: digits and Python refuses more than 4,300 with a ValueError few callers expect.
MAX_NUMBER_DIGITS = 100

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_LONG_NUMBER = re.compile(rb"[0-9]{%d}" % (MAX_NUMBER_DIGITS + 1))
_OPEN_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))


def check_json_bounds(body: bytes) -> None:
    """Refuse, before any parser sees it, a body nested deeper than ``MAX_JSON_DEPTH`` or
    holding a number longer than ``MAX_NUMBER_DIGITS`` digits (``SkippableRecordError``).

    Byte-level and linear: brackets and digits inside strings do not count, so strings are
    cut out first, but only when the cheap counts say the body could be out of bounds.
    """
    openers = body.count(b"[") + body.count(b"{")
    if openers <= MAX_JSON_DEPTH and _LONG_NUMBER.search(body) is None:
        return  # nearly every body: too few brackets to nest that deep, no long digit run
    outside = _JSON_STRING.sub(b'""', body)
    if _LONG_NUMBER.search(outside) is not None:
        raise SkippableRecordError(
            f"the body holds a number of more than {MAX_NUMBER_DIGITS} digits; no platform "
            "sends such numbers, so the sender is broken or hostile: fix it and resend"
        )
    brackets = outside.translate(_OPEN_TO_SQUARE, delete=_NOT_BRACKET)
    # Each pass removes the innermost pairs, one nesting level: a pair left after
    # MAX_JSON_DEPTH passes sits deeper than that, and so does a longer run of unclosed
    # openers (what is left of a body that never closes them).
    for _ in range(MAX_JSON_DEPTH):
        if b"[]" not in brackets:
            break
        brackets = brackets.replace(b"[]", b"")
    if b"[]" in brackets or b"[" * (MAX_JSON_DEPTH + 1) in brackets:
        raise SkippableRecordError(
            f"the body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep; no "
            "platform sends such documents, so the sender is broken or hostile: fix it and resend"
        )


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}... does not fit a 64-bit float")
    return value


_DECODER = json.JSONDecoder(parse_float=_finite)


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``, within the bounds above; any problem (bounds, syntax,
    invalid UTF-8, a float out of range) is a ``SkippableRecordError`` naming it."""
    check_json_bounds(body)
    try:
        # What json.loads(body, parse_float=_finite) does, without a new decoder per call.
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
        raise SkippableRecordError(
            f"body is not JSON ({type(exc).__name__}: {str(exc)[:200]}); the sender must "
            "post one JSON object"
        ) from None


def validation_problems(exc: ValidationError, *, prefix: str = "", limit: int = 5) -> str:
    """What was wrong with a payload, field by field, for a quarantine reason."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
        for err in exc.errors()[:limit]
    )


class Normaliser(abc.ABC):
    platform: ClassVar[str]

    def __init__(self, *, connector_id: str, settings: ConnectorSettings) -> None:
        self.connector_id = connector_id
        self.settings = settings

    @abc.abstractmethod
    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        """Canonical events for one delivery; raise SkippableRecordError to quarantine it."""
