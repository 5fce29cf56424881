"""What a link's input caused, kept in the link's state until Kafka has it.

The sync agent writes a link's state to the table (and so to its changelog) and sends the
commands and audit records that the same input caused; Kafka gives no atomicity across the
two. A worker that dies after the changelog record landed and before the commands did comes
back with a state that has already seen the input (the dedupe drops it when it is read
again) and without its commands. So every input that causes something leaves an **outbox
entry** in the state it writes, keyed by where the input sits in Kafka (topic, partition,
offset): the commands (Avro, as they were sent), the audit records, the timers, the deferred
re-decision.
When the same position is read again (the worker restarted before the offset was committed),
the agent sends the entry again instead of planning: same command ids, marked as possibly
executed before, so the sinks check before writing (``connectors.base.sink``).

An entry is dropped once everything before and including its position has been delivered
(``delivered_below``: the agent's ack order, ``app.agents.acks.acked_below``; on a partition
not acked since it was assigned nothing is dropped). At rest a link keeps at most the entries of its
inputs that were still in flight when it was last written.

Pure: positions and the delivery watermark come from the agent; ``step`` is the whole of
what the agent does with one input.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.codec import decode_as, encode
from schemas.models import AuditRecord, Contact, Envelope, SyncCommand, Timer, WriteResult
from streams import state_codec
from streams.state import LinkState
from streams.sync import SyncPlanner

__all__ = ["Entry", "Position", "Step", "prune", "replayed", "step"]

#: ``(topic, partition) -> offset`` below which every input's outputs are in Kafka
DeliveredBelow = Callable[[str, int], int]


@dataclass(frozen=True, slots=True)
class Position:
    """Where an input sits in Kafka."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Entry:
    """The outputs of the input at ``position``, ready to be sent again."""

    position: Position
    commands: list[SyncCommand]
    audits: list[AuditRecord]
    #: the deferred re-decision the input asked for (seconds), if any
    retry_in: float | None
    timers: list[Timer]


@dataclass(frozen=True, slots=True)
class Step:
    """What the agent does with one input: write ``state`` (the table's bytes; None: leave
    the table as it is), send the commands, audit records and timers, and ask again after
    ``retry_in`` seconds."""

    state: bytes | None
    commands: list[SyncCommand]
    audits: list[AuditRecord]
    retry_in: float | None
    #: the input was read before and its outputs are sent again
    resent: bool
    timers: list[Timer]
    #: ``commands``, ``audits`` and ``timers`` encoded (``schemas.codec``), once: the bytes
    #: the outbox keeps are the bytes the agent sends
    command_values: list[bytes]
    audit_values: list[bytes]
    timer_values: list[bytes]


def step(
    planner: SyncPlanner,
    raw: bytes | None,
    record: Envelope | WriteResult | Timer,
    *,
    position: Position,
    delivered_below: DeliveredBelow,
    may_have_run: bool,
    now: datetime,
    profile: Contact | None = None,
    state: LinkState | None = None,
) -> Step:
    """Decide one input against its link's state (``raw``, the table's value; ``state``,
    the same decoded, when the caller has it already).

    ``may_have_run``: the input may have been processed before (by this partition's previous
    owner): its commands go out marked as possibly executed (``attempt`` ≥ 2).
    """
    if state is None and raw is not None:
        state = state_codec.decode(raw)
    held = state.outbox if state is not None else []
    pending = prune(held, delivered_below)
    again = replayed(pending, position)
    if again is not None:
        # Read a second time after its state was written: send what it caused again (the
        # dedupe would drop it, and its commands may never have reached Kafka).
        changed = state is not None and len(pending) != len(held)
        written = None
        if changed and state is not None:
            state.outbox = pending
            written = state_codec.encode(state)
        commands = _possibly_executed(again.commands)
        return Step(
            written,
            commands,
            again.audits,
            again.retry_in,
            resent=True,
            timers=again.timers,
            command_values=[encode(c) for c in commands],
            audit_values=[encode(a) for a in again.audits],
            timer_values=[encode(t) for t in again.timers],
        )
    if state is not None:
        state.outbox = pending
    if isinstance(record, Envelope):
        plan = planner.on_event(state, record, now=now, profile=profile)
    elif isinstance(record, Timer):
        plan = planner.on_timer(state, record, now=now)
    else:
        plan = planner.on_write(state, record, now=now)
    command_values = [encode(c) for c in plan.commands]
    audit_values = [encode(a) for a in plan.audits]
    timer_values = [encode(t) for t in plan.timers]
    commands = plan.commands
    if may_have_run and commands:
        commands = _possibly_executed(commands)
        sent = [encode(c) for c in commands]
    else:
        sent = command_values
    outputs = (plan.audits, plan.retry_in, False, plan.timers, sent, audit_values, timer_values)
    body = state_codec.encode_body(plan.state)
    if raw is not None and raw == body + state_codec.encode_outbox(pending):
        # Nothing changed (a duplicate): nothing to write, and nothing to keep either, as
        # the same input read again meets the same state and decides the same.
        return Step(None, commands, *outputs)
    if command_values or audit_values or timer_values or plan.retry_in is not None:
        plan.state.outbox.append(
            _entry(position, command_values, audit_values, plan.retry_in, timer_values)
        )
    written = body + state_codec.encode_outbox(plan.state.outbox)
    return Step(written, commands, *outputs)


def _possibly_executed(commands: list[SyncCommand]) -> list[SyncCommand]:
    return [c.model_copy(update={"attempt": max(2, c.attempt)}) for c in commands]


def prune(
    entries: Sequence[dict[str, Any]], delivered_below: DeliveredBelow
) -> list[dict[str, Any]]:
    """The entries whose outputs may not be in Kafka yet."""
    return [e for e in entries if e["offset"] >= delivered_below(e["topic"], e["partition"])]


def replayed(entries: Sequence[dict[str, Any]], position: Position) -> Entry | None:
    """The entry of the input at ``position``, when it is read a second time."""
    for e in entries:
        if (e["topic"], e["partition"], e["offset"]) == (
            position.topic,
            position.partition,
            position.offset,
        ):
            return Entry(
                position,
                [decode_as(_unpack(c), SyncCommand) for c in e["commands"]],
                [decode_as(_unpack(a), AuditRecord) for a in e["audits"]],
                e.get("retry_in"),
                [decode_as(_unpack(t), Timer) for t in e.get("timers") or []],
            )
    return None


def _entry(
    position: Position,
    commands: Sequence[bytes],
    audits: Sequence[bytes],
    retry_in: float | None,
    timers: Sequence[bytes],
) -> dict[str, Any]:
    """The entry for an input's outputs (their encoded commands, audit records, timers)."""
    return {
        "topic": position.topic,
        "partition": position.partition,
        "offset": position.offset,
        "commands": [_pack(c) for c in commands],
        "audits": [_pack(a) for a in audits],
        "retry_in": retry_in,
        "timers": [_pack(t) for t in timers],
    }


def _pack(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unpack(text: str) -> bytes:
    return base64.b64decode(text)
