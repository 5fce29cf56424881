"""What the dead-letter topic holds: ``DeadLetter`` records, and commands no worker could read.

A command that fails to write becomes a ``DeadLetter`` (the command, the error, the attempts).
A command this worker cannot even decode (written by a newer Deskstream during a rolling
upgrade, or damaged) cannot be typed into one: it is kept byte for byte, with headers naming
the topic it came from and the error, so that ``deskstream dlq retry`` can send it back where
it was once every worker can read it. Nothing is dropped either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition

from app.settings import Settings
from schemas.codec import decode_as
from schemas.errors import SchemaError
from schemas.models import DeadLetter

__all__ = [
    "UNREADABLE",
    "Unreadable",
    "dlq_partitions",
    "read_letter",
    "retry_group",
    "unreadable_headers",
]

#: header marking a dead letter that is the original, unreadable command bytes
UNREADABLE = "deskstream-unreadable"
_TOPIC = "deskstream-source-topic"
_KEY = "deskstream-source-key"
_ERROR = "deskstream-error"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An unreadable command, as it was on its commands topic."""

    source_topic: str
    #: its key there (commands are keyed by target and link: keeps their order on a retry)
    key: bytes
    error: str
    value: bytes


def retry_group(settings: Settings) -> str:
    """The consumer group whose committed offsets mark what `deskstream dlq retry` sent back."""
    return f"{settings.app_id}-dlq-retry"


def dlq_partitions(settings: Settings) -> list[TopicPartition]:
    return [TopicPartition(settings.topic("dlq"), p) for p in range(settings.partitions)]


def unreadable_headers(source_topic: str, key: bytes, error: str) -> list[tuple[str, bytes]]:
    return [
        (UNREADABLE, b"1"),
        (_TOPIC, source_topic.encode()),
        (_KEY, key),
        (_ERROR, error.encode("utf-8", "replace")[:2000]),
    ]


def read_letter(value: bytes, headers: list[tuple[str, bytes]] | None) -> DeadLetter | Unreadable:
    """One record of the dead-letter topic; ``SchemaError`` when it is neither kind."""
    found = dict(headers or [])
    if UNREADABLE in found:
        return Unreadable(
            source_topic=found.get(_TOPIC, b"").decode("utf-8", "replace"),
            key=found.get(_KEY, b""),
            error=found.get(_ERROR, b"").decode("utf-8", "replace"),
            value=value,
        )
    try:
        return decode_as(value, DeadLetter)
    except SchemaError as exc:
        raise SchemaError(
            f"a record on the dead-letter topic is neither a DeadLetter nor marked unreadable: "
            f"{exc}; upgrade this Deskstream to the workers' version and list again"
        ) from exc
