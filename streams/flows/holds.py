"""A contact is never created on a first miss while its match may be on its way.

A contact link is named by the customer's email (``connectors.base.links``), so every
platform's contact with that email meets in one link. When the sync would create a contact
on a platform where the link has none, that platform may well have one: a person created it
a moment ago and its webhook or change event is still in flight, or the platform's search
has not indexed it yet (a few minutes on the support platforms: ``DEFAULT_HOLD_SECONDS`` in
``streams.config`` gives the sources). A create then would make a second record of the
person.

So the first such create is **held** for the route's ``profile.hold_seconds``:

- the hold goes into the link's state (``LinkState.holds``, durable with the table) and a
  ``Timer`` due at its end goes to ``deskstream.timers`` (durable in Kafka): a worker restart
  loses neither;
- the target's own contact arriving meanwhile (any event of the link from that platform)
  ends the hold as **linked**: nothing is created, profile writes follow as updates;
- once the hold is over (its timer, or any later input of the link past its end) the create
  goes out as a contact/upsert, whose sink looks the contact up by email once more and
  creates it only when still missing; its write result says **created** or **linked**.

Pure: time comes in as ``now`` (and a timer's due time), the state is the link's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from connectors.base.commands import CONTACT_MATCHED, CREATED_CONTACT
from schemas.models import WriteOutcome, WriteResult
from streams.config import DEFAULT_HOLD_SECONDS, SyncConfig
from streams.flows import Decisions
from streams.mapping import adapter, path

__all__ = [
    "HOLD",
    "Gate",
    "gate",
    "hold_seconds",
    "on_joined",
    "on_timer_done",
    "on_written",
    "release_reason",
    "released",
]

#: ``Timer.purpose`` of a held contact create (``Timer.subject``: the target platform)
HOLD = "contact_hold"


class Gate(StrEnum):
    #: no hold applies (none configured, or already released): write now
    OPEN = "open"
    #: a hold starts now: nothing is written, a timer is set
    HELD = "held"
    #: a hold is running: nothing is written
    WAIT = "wait"
    #: the hold is over: the create goes out now (the sink looks up by email first)
    RELEASED = "released"


def hold_seconds(config: SyncConfig, source: str, target: str) -> float:
    """The hold of the route whose profile flow brings ``source``'s values to ``target``
    (the chain's last hop); the default when no chain does."""
    hops = path(config, source, target, lambda route: route.profile.enabled)
    return hops[-1].profile.hold_seconds if hops else DEFAULT_HOLD_SECONDS


def gate(ctx: Decisions, target: str, seconds: float) -> Gate:
    """May a contact create go to ``target`` (not a member of the link) now?"""
    holds = ctx.state.holds
    held = holds.get(target)
    if held is None:
        if seconds <= 0:
            return Gate.OPEN
        until = ctx.ts + seconds
        holds[target] = {"since": ctx.ts, "until": until, "seconds": seconds}
        name = adapter(target).name
        ctx.note(
            "sync",
            "contact_held",
            f"held: waiting {seconds:g} s for a match by email: no {name} contact is linked "
            f"yet, and one may be on its way (its event in flight, {name}'s search a few "
            f"minutes behind); then looked up by email once more and created only if missing",
            platform=target,
            until=_iso(until),
        )
        ctx.later(HOLD, target, until)
        return Gate.HELD
    if held.get("command"):
        return Gate.OPEN  # released: its upsert looks up before it creates
    return Gate.RELEASED if _over(ctx, target, held) else Gate.WAIT


def _over(ctx: Decisions, target: str, held: dict[str, Any]) -> bool:
    # A timer's due time went through Avro's microseconds: compare with that much slack.
    until = float(held["until"])
    return ctx.fired.get(target, float("-inf")) >= until - 1e-3 or ctx.ts >= until


def released(ctx: Decisions, target: str, command_id: str) -> None:
    """The create of a released hold went out as ``command_id``."""
    held = ctx.state.holds[target]
    held["command"] = command_id


def release_reason(ctx: Decisions, target: str) -> str:
    held = ctx.state.holds[target]
    name = adapter(target).name
    return (
        f"hold over: no {name} contact with this email arrived in {held['seconds']:g} s; "
        f"looking it up by email once more, created only if still missing"
    )


def on_joined(ctx: Decisions, platform: str, record_id: str) -> None:
    """``platform``'s contact joined the link (its own event): a running hold ends linked."""
    held = ctx.state.holds.get(platform)
    if held is None or held.get("command"):
        return  # no hold, or its upsert is out: its write result says what became of it
    del ctx.state.holds[platform]
    waited = max(0.0, ctx.ts - held["since"])
    ctx.note(
        "sync",
        "contact_linked",
        f"linked: {adapter(platform).name} contact {record_id} with this email arrived "
        f"{waited:.0f} s into the hold; nothing created",
        platform=platform,
        record=record_id,
    )


def on_written(ctx: Decisions, result: WriteResult) -> None:
    """The upsert of a released hold answered: created, linked, or failed (the next change
    of the contact holds again)."""
    platform = result.target.platform.value
    held = ctx.state.holds.get(platform)
    if held is None or held.get("command") != result.command_id:
        return
    del ctx.state.holds[platform]
    name = adapter(platform).name
    record = result.target_entity_id or "?"
    if result.outcome is WriteOutcome.FAILED:
        ctx.note(
            "sync",
            "contact_create_failed",
            f"the {name} contact could not be created after the hold ({result.error}); the "
            "next change of this contact tries again",
            platform=platform,
        )
    elif result.created_ids.get(CREATED_CONTACT) == CONTACT_MATCHED:
        ctx.note(
            "sync",
            "contact_linked",
            f"linked: {name} contact {record} found by email at the end of the hold",
            platform=platform,
            record=record,
        )
    else:
        ctx.note(
            "sync",
            "contact_created",
            f"created: {name} contact {record}, after a hold of {held['seconds']:g} s and a "
            "last lookup by email that found none",
            platform=platform,
            record=record,
        )


def on_timer_done(ctx: Decisions, platform: str) -> None:
    """After a hold's timer was decided: a hold it ended that was not released had nothing
    to write (every profile value already there, or no longer wanted): it ends here."""
    held = ctx.state.holds.get(platform)
    if held is None or held.get("command") or not _over(ctx, platform, held):
        return
    del ctx.state.holds[platform]
    ctx.note(
        "sync",
        "contact_hold_ended",
        f"hold over: nothing to write to {adapter(platform).name} any more; no contact created",
        platform=platform,
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
