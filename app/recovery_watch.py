"""Noticing a table recovery that has stopped receiving changelog records, and saying why.

A worker's Faust table recovery reads each active changelog partition up to the highwater it
measured when the recovery started, and stays not ready (``/ready`` answers 503, no agent
processes anything) until every partition got there. If the fetch path stops delivering one
partition's records, nothing in Faust notices beyond a warning every 30 s: the worker waits for
ever while its partitions' traffic piles up. That happened, rarely, to the survivor of a
kill -9 takeover in the cluster tests (tiny changelogs, every record of them present, no record
delivered after "Resuming flow"). This account of one such stall found the cause, a batch
Faust's fetch set aside, now read again in ``app.kafka_transport``; the watch stays for any
other path that loses a changelog record.

This module holds the decision (which partitions are stalled: pure, unit-tested) and the
account of the fetch path's state that goes into the warning, so that one stalled run says
where the records stopped: Faust's view (active, paused, buffered, the read offset below which
its fetch loop drops records), aiokafka's (position, paused, a fetched batch waiting), and
where the fetch loop and the changelog reader are waiting.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from faust.types import TP

__all__ = ["describe_fetch_path", "stalled_partitions"]

#: Frames of a waiting task shown in the warning: its innermost ones say what it waits on.
STACK_FRAMES = 8


def stalled_partitions(
    now: float,
    *,
    remaining: Mapping[TP, int],
    started_at: float | None,
    last_event_at: Mapping[TP, float],
    last_nudge_at: Mapping[TP, float],
    quiet_for: float,
) -> list[TP]:
    """The active changelog partitions that still lack records and have received none for
    ``quiet_for`` seconds: since the recovery started, their last record, or their last nudge,
    whichever came latest. A partition that gets records is slow, not stalled."""
    if started_at is None:
        return []
    stalled = []
    for tp, left in remaining.items():
        if left <= 0:
            continue
        heard = max(
            started_at, last_event_at.get(tp, started_at), last_nudge_at.get(tp, started_at)
        )
        if now - heard >= quiet_for:
            stalled.append(tp)
    return sorted(stalled)


def describe_fetch_path(app: Any, tps: Iterable[TP]) -> str:
    """What stands between ``tps``' next changelog records and the table, read from Faust's
    consumer and aiokafka's without waiting (diagnostics: private attributes, each read
    guarded, so a Faust or aiokafka upgrade costs detail, never the worker)."""
    consumer = app.consumer
    lines = [
        f"consumer flow active={_read(lambda: consumer.flow_active)} "
        f"queues' flow control active={_read(lambda: app.flow_control.is_active())} "
        f"changelog queue holds={_read(lambda: app.tables.changelog_queue.qsize())}"
    ]
    kafka = _read(lambda: consumer._thread._ensure_consumer())
    for tp in tps:
        lines.append(
            f"{tp.topic}[{tp.partition}] {_faust_view(consumer, tp)}; {_kafka_view(kafka, tp)}"
        )
    for name in ("Fetcher._fetcher", "Recovery._slurp_changelogs"):
        lines.append(f"{name} waits at: {_where_waiting(name)}")
    return "\n".join(lines)


def _faust_view(consumer: Any, tp: TP) -> str:
    return (
        f"faust: active={_read(lambda: tp in consumer._active_partitions)} "
        f"paused={_read(lambda: tp in consumer._paused_partitions)} "
        f"buffered={_read(lambda: tp in consumer._buffered_partitions)} "
        f"drops records below offset={_read(lambda: consumer._read_offset.get(tp))}"
    )


def _kafka_view(kafka: Any, tp: TP) -> str:
    def state() -> str:
        tp_state = kafka._subscription.subscription.assignment.state_value(tp)
        if tp_state is None:
            return "not assigned"
        return (
            f"position={tp_state._position} paused={tp_state.paused} "
            f"status={tp_state._status.name} highwater={tp_state.highwater}"
        )

    batch = _read(lambda: tp in kafka._fetcher._records)
    return f"aiokafka: {_read(state)} fetched batch waiting={batch}"


def _where_waiting(qualname: str) -> str:
    tasks = [t for t in asyncio.all_tasks() if _runs(t, qualname)]
    if not tasks:
        return "no such task"
    chain = _await_chain(tasks[0].get_coro())
    return " -> ".join(chain[-STACK_FRAMES:])


def _await_chain(awaitable: Any) -> list[str]:
    """The coroutines a task is suspended in, outermost first: ``Task.get_stack`` gives only
    the outermost frame of a suspended coroutine, so this follows ``cr_await`` down."""
    chain: list[str] = []
    while awaitable is not None and len(chain) < 50:
        if type(awaitable).__name__ == "async_generator_asend":
            # ``async for`` awaits a step object that exposes no attribute for its generator;
            # the garbage collector's view of what it refers to finds it.
            awaitable = next(
                (r for r in gc.get_referents(awaitable) if inspect.isasyncgen(r)), awaitable
            )
        frame = (
            getattr(awaitable, "cr_frame", None)
            or getattr(awaitable, "gi_frame", None)
            or getattr(awaitable, "ag_frame", None)
        )
        if frame is None:
            chain.append(type(awaitable).__name__)  # a future, or an async generator's step
            break
        file = frame.f_code.co_filename.rsplit("/", 2)
        chain.append(f"{frame.f_code.co_name} ({'/'.join(file[-2:])}:{frame.f_lineno})")
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
    return chain


def _runs(task: asyncio.Task[Any], qualname: str) -> bool:
    """Whether ``task`` runs the coroutine function ``qualname``: directly, or as a mode
    service's task (run through ``Service._execute_task``, named after the coroutine)."""
    direct = getattr(task.get_coro(), "__qualname__", "") == qualname
    return direct or f" {qualname} at " in task.get_name()


def _read(get: Any) -> Any:
    try:
        return get()
    except Exception as exc:  # a diagnostic must never take the worker down
        return f"<unreadable: {type(exc).__name__}>"
