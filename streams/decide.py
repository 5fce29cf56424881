"""Should one field change cross to the other platform? Four checks, cheapest first.

1. ownership: a field owned by one platform (``conflicts.owners``) only flows from it;
2. conflict: last writer wins on source time; an older change than the one the link already
   holds from the other side loses (beyond ``clock_tolerance_seconds``: platforms stamp
   changes with different precision, Intercom in whole seconds), and an older report from
   the same side is stale;
3. echo, layer two: the value on this record is one we wrote ourselves (own-write
   fingerprint) — the platform is telling us about our own change;
4. convergence, layer three: the other side already has the value — nothing to write.

Layer one (the actor is our own service account) is checked once per event, before any of
this, by the planner. Every refusal is returned as a reason for the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base.fingerprints import fingerprint
from streams.config import SyncConfig
from streams.mapping import Side
from streams.state import LinkState

__all__ = ["FieldVerdict", "accept_field", "decide_field"]


@dataclass(frozen=True, slots=True)
class FieldVerdict:
    cross: bool
    decision: str
    reason: str


def decide_field(
    state: LinkState,
    config: SyncConfig,
    *,
    side: Side,
    record_id: str,
    field: str,
    source_value: Any,
    target_value: Any,
    source_time: float,
    now: float,
) -> FieldVerdict:
    target = "zendesk" if side == "intercom" else "intercom"
    owner = config.conflicts.owners.get(field)
    if owner is not None and owner != side:
        return FieldVerdict(
            False, "not_owner", f"{field} is owned by {owner}; {side}'s change stays there"
        )
    clock = state.clocks.get(field)
    if clock is not None and float(clock[0]) > source_time:
        beyond_precision = float(clock[0]) - source_time > config.clock_tolerance_seconds
        if clock[1] != side and beyond_precision:
            return FieldVerdict(
                False,
                "conflict_lost",
                f"{field} was changed later on {clock[1]}; last writer wins, "
                f"{side}'s older change is not copied",
            )
        if clock[1] == side:
            # A late report from the same side (webhooks arrive out of order, a late echo of
            # our own write): the newer state it precedes was already handled.
            return FieldVerdict(
                False,
                "stale",
                f"{side} reported a newer {field} already; this older report is dropped",
            )
    # The change happened, whatever we do with it: it is now the field's latest writer (a win
    # inside the tolerance window keeps the later time on the clock; it never goes back).
    state.clocks[field] = [max(float(clock[0]), source_time) if clock else source_time, side]
    if state.is_own_write(fingerprint(side, record_id, field, source_value), now):
        return FieldVerdict(
            False, "echo_suppressed", f"layer 2: {side} reports our own write of {field}"
        )
    if state.known(target, field) == target_value:
        return FieldVerdict(False, "converged", f"layer 3: {target} already has this {field}")
    return FieldVerdict(True, "sync", f"{field} changes on {target}")


def accept_field(
    state: LinkState, *, side: Side, field: str, target_value: Any, source_time: float
) -> None:
    """Record that ``field`` now has ``target_value`` on the other side, written because of a
    change on ``side`` at ``source_time``."""
    target = "zendesk" if side == "intercom" else "intercom"
    state.set_known(target, field, target_value)
    record = state.members.get(target)
    if record is not None:
        state.forget_writes(target, record, field)
    clock = state.clocks.get(field)
    if clock is None or float(clock[0]) <= source_time:
        state.clocks[field] = [source_time, side]
