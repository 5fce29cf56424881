"""Convergence: for each synced field, one winning value and what each linked record holds.

A *register* (one per synced field of a link, and one per tag) answers two questions that
per-event decisions could not answer together:

- **Which change wins?** Every change a person makes competes on a total order: its source
  time at ``resolution`` seconds (the coarsest platform clock: some platforms stamp
  whole seconds), then the configured platform ``precedence`` inside the same slot, then the exact
  time; a person whose record already showed the winner changed it knowingly and comes after
  it. A field owner always wins on its field. Apart from what we know of what each person saw,
  the order does not depend on when webhooks arrive.
- **Does every record hold it?** After each event and each write result, each linked record
  is compared with the winner's value mapped to that platform (``reconcile``). A record that
  disagrees gets one write, unless the same write is already in flight (``pending``) or was
  already tried and the platform has reported nothing new since (``tried``): a value a
  platform cannot take is never written in a loop.

What a platform reports is an *observation* (``seen``: value, source time, when we noted it).
Observations only move forward in source time per platform, so a late webhook carrying an
old view of the record cannot roll the link's knowledge back; an event that explicitly
reports a change (``explicit``: the field is in its ``changed_fields``) still competes as a
change even when it arrives late. Our own writes reported back are observations, never
changes; a person's change is an observation that differs from what we knew and from what
we are writing there.

Crossed writes (our write lands after a person's newer change on that record) resolve
themselves: the echo of our write is an observation that disagrees with the winner, and the
next reconcile writes the winner there once. The register is plain JSON (it lives in the
links table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "MAX_REASSERTS",
    "Competition",
    "Observed",
    "Policy",
    "Register",
    "Want",
    "settle_writes",
]

#: writes of one winner to one record before the register stops and says so (audited
#: ``convergence_stalled``): a safety net, far above what crossed writes need (one each)
MAX_REASSERTS = 3

Observed = Literal["won", "lost", "stale", "echo", "unchanged", "not_owner"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How changes to one field compete."""

    #: seconds per time slot; 0 compares exact times
    resolution: float
    #: platforms in tie-break order, first wins
    precedence: Sequence[str]
    #: the platform that owns the field, if any
    owner: str | None = None

    def slot(self, at: float) -> float:
        return math.floor(at / self.resolution) if self.resolution > 0 else at

    def rank(self, at: float, side: str) -> tuple[float, int, float]:
        slot = self.slot(at)
        order = list(self.precedence)
        tie = len(order) - order.index(side) if side in order else 0
        return (slot, tie, at)


@dataclass(frozen=True, slots=True)
class Competition:
    outcome: Observed
    #: the winner this change competed with: (platform, value), when there was one
    rival: tuple[str, Any] | None = None
    #: a change that was winning and is now superseded by a concurrent one (it loses)
    superseded: tuple[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Want:
    """A write the reconcile asks for: ``value`` on ``side``, believed to hold ``expect``."""

    side: str
    value: Any
    #: what the record may hold when this write runs: what we last saw there, and what a
    #: write of ours still on its way leaves there (if it is not refused)
    expect: tuple[Any, ...]
    reassert: bool


_MISSING = object()


class Register:
    """A view over one register's JSON (mutated in place)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    # -- accessors --------------------------------------------------------------------------
    @property
    def winner(self) -> tuple[float, str, Any] | None:
        w = self.raw.get("w")
        return (float(w[0]), str(w[1]), w[2]) if w else None

    def seen(self, side: str) -> tuple[float, Any, float] | None:
        """(source time, value, noted at step) of the latest observation of ``side``."""
        s = self.raw.get("seen", {}).get(side)
        return (float(s[0]), s[1], float(s[2])) if s else None

    def _seen_sequence(self, side: str) -> int | None:
        s = self.raw.get("seen", {}).get(side)
        return int(s[3]) if s and len(s) > 3 and s[3] is not None else None

    def _in_flight(self, side: str) -> list[list[Any]]:
        """Our writes to ``side`` still without an answer, oldest first: [value, command id,
        step issued]."""
        flights: list[list[Any]] = self.raw.get("pending", {}).get(side, [])
        return flights

    def pending(self, side: str) -> tuple[Any, str] | None:
        """(value, command id) of our latest write in flight to ``side``."""
        flights = self._in_flight(side)
        return (flights[-1][0], str(flights[-1][1])) if flights else None

    def _set_seen(
        self,
        side: str,
        at: float,
        value: Any,
        noted: float,
        sequence: int | None = None,
        *,
        assumed: bool = False,
    ) -> None:
        """``assumed``: from the answer to our own write, not from a report of the platform."""
        self.raw.setdefault("seen", {})[side] = [at, value, noted, sequence, assumed, assumed]

    def _mark_ours(self, side: str) -> None:
        """The latest observation is the echo of one of our writes."""
        self.raw["seen"][side][5] = True

    def _ours(self, side: str) -> bool:
        s = self.raw.get("seen", {}).get(side)
        return bool(s and len(s) > 5 and s[5])

    def _assumed(self, side: str) -> bool:
        s = self.raw.get("seen", {}).get(side)
        return bool(s and len(s) > 4 and s[4])

    def agreement(self, project: Callable[[Any, str, str], Any]) -> Callable[[str, Any], bool]:
        """``agrees(side, value)``: is ``value`` on ``side`` the winner's value spelled for
        ``side`` by ``project`` (equality, not "maps back to the winner": a person who reopens a
        record means open, though a pending record elsewhere may map to open there as well)?
        No winner, or a value that does not flow there: it agrees."""

        def agrees(side: str, value: Any) -> bool:
            winner = self.winner
            if winner is None:
                return True
            _, origin, won = winner
            desired = won if side == origin else project(won, origin, side)
            return desired is None or bool(value == desired)

        return agrees

    # -- observations -----------------------------------------------------------------------
    def observe(
        self,
        side: str,
        value: Any,
        at: float,
        *,
        noted: int,
        explicit: bool,
        ours: bool,
        person: bool = False,
        views_are_changes: bool = True,
        sequence: int | None = None,
        changed_since: float | None = None,
        policy: Policy,
        agrees: Callable[[str, Any], bool],
    ) -> Competition:
        """``side`` reports ``value`` as of source time ``at``.

        ``explicit``: the report says this field changed (not merely a copy of the record);
        ``ours``: made by our own service account; ``person``: made by someone the platform
        names (an agent, an admin, the customer): an explicit change of theirs is never our
        echo, even when it equals the value we are writing there; ``views_are_changes``: False
        when the platform reports every change of this field explicitly, so a copy of the
        record that differs is only news of where the record is (its change report is on its
        way, with the change's own time); ``sequence``: the record's own version counter when
        the platform has one finer than its clock (a conversation's part ids); ``changed_since``:
        when this record was reported before (a change seen only in a copy counts from then).
        ``agrees(side, value)``: is ``value`` on ``side`` the current winner's value (used to
        tell a concurrent change from a later one).
        """
        seen = self.seen(side)
        previous = seen[1] if seen is not None else _MISSING
        # Against what our own write's answer told us, an explicit report counts from its
        # platform's second: a change stamped 10:00:06 may well follow our write
        # answered at 10:00:06.25. Between two reports of the platform, its own clock rules.
        if seen is None or at > seen[0]:
            newer = True
        elif self._assumed(side):
            newer = explicit and policy.slot(at) >= policy.slot(seen[0])
        else:
            newer = explicit and at >= seen[0]
        known_sequence = self._seen_sequence(side)
        if (
            seen is not None
            and sequence is not None
            and known_sequence is not None
            and sequence != known_sequence
        ):
            # The record's own counter orders what the clock cannot (the same second).
            newer = sequence > known_sequence
        by_us = self._ours(side)  # the record's previous value: written there by us?
        if newer:
            # ``noted`` moves only when the value does: a record re-sent unchanged is no news
            # for the loop guard in ``wants``.
            kept = seen[2] if seen is not None and seen[1] == value else noted
            self._set_seen(side, at, value, kept, sequence)
        in_flight = [f[0] for f in self._in_flight(side)]
        if ours or (value in in_flight and not (person and explicit)):
            # A person's report showing what the record held already is no sign that our
            # write landed: the value is theirs until one of our reports says otherwise.
            shows_ours = ours or previous != value or by_us
            if newer and (explicit or value in in_flight) and shows_ours:
                # what we wrote there (the echo of our tag write also copies the status,
                # which we did not write)
                self._mark_ours(side)
            if newer and side == policy.owner and self.winner is None:
                # Nobody changed an owned field on its owner yet: what the owner's record
                # holds (our create wrote it) is the owner's value, set back wherever another
                # record changes it.
                self.raw["w"] = [at, side, value]
            # Our write in flight, reported back (layer two); a person who explicitly set
            # the same value still competes (their change may win over ours).
            return Competition("echo")
        if not explicit:
            if previous is _MISSING and self.winner is None:
                pass  # the first sight of the field anywhere: its value is the baseline
            elif previous is _MISSING or previous == value:
                return Competition("unchanged")  # a copy of the record, or its first sight
            elif not newer:
                return Competition("stale")  # an old copy; a newer one was seen
            elif not views_are_changes:
                return Competition("unchanged")  # the change's own report is on its way
        # An explicit report is a change even when we knew the same value: a person undid
        # what we were writing there, before its echo reached us.
        if not explicit and changed_since is not None:
            # A copy of the record shows the change, not when it happened: somewhere after the
            # previous report of this record. It counts from then, so a person's change on
            # the other side in between is not outvoted by a late copy.
            at = min(at, changed_since)
        return self._compete(side, value, at, policy, previous, agrees, newer=newer, by_us=by_us)

    def _compete(
        self,
        side: str,
        value: Any,
        at: float,
        policy: Policy,
        previous: Any,
        agrees: Callable[[str, Any], bool],
        *,
        newer: bool,
        by_us: bool,
    ) -> Competition:
        winner = self.winner
        rival = (winner[1], winner[2]) if winner else None
        if policy.owner is not None and side != policy.owner:
            return Competition("not_owner", rival)
        # A person whose record showed the winner, written there by us, changed it knowingly:
        # their change comes after it even in the same second (an agent reopening what
        # our write had just closed), never from an earlier one. A record that merely
        # agreed (mappings are not one-to-one) proves nothing: then the two changes crossed.
        informed = (
            newer
            and previous is not _MISSING
            and by_us
            and agrees(side, previous)
            and (winner is None or policy.slot(at) >= policy.slot(winner[0]))
        )
        crossed = winner is not None and winner[1] != side and not informed
        if winner is not None and not informed:
            if winner[1] == side:
                beats = at >= winner[0]  # the same platform's later report is its latest
            else:
                beats = policy.rank(at, side) > policy.rank(winner[0], winner[1])
            if not beats:
                return Competition("stale" if winner[1] == side else "lost", rival)
        self.raw["w"] = [at, side, value]
        if winner is not None and (winner[1], winner[2]) == (side, value):
            return Competition("unchanged")  # the same value again: nothing new to write
        # A new winner: written everywhere again.
        for note in ("tried", "held", "stalled", "unplaceable"):
            self.raw.pop(note, None)
        return Competition("won", rival, superseded=rival if crossed else None)

    # -- write results ----------------------------------------------------------------------
    def track(self, side: str, value: Any, command_id: str, *, step: int) -> None:
        """Our write of ``value`` to ``side`` is on its way, issued at ``step``. Earlier writes
        may still be on their way too: each one's echo is recognised until its answer."""
        self.raw.setdefault("pending", {}).setdefault(side, []).append([value, command_id, step])

    def settle(
        self,
        side: str,
        command_id: str,
        *,
        applied: bool,
        at: float,
        noted: int,
        sequence: int | None = None,
        unplaceable: bool = False,
    ) -> bool:
        """The write ``command_id`` to ``side`` has its result; True when it was ours to settle.

        ``applied``: the platform took the value (the sink's fingerprints name the field);
        the record then holds it as of ``at`` (unless the platform reported something newer).
        ``unplaceable``: the sink left the field out because the platform cannot hold the
        value (an owner with no agent there): it is not written there again until another
        winner comes (a new change, even back to the same value, is tried again).
        """
        flights = self._in_flight(side)
        index = next((i for i, f in enumerate(flights) if f[1] == command_id), None)
        if index is None:
            return False
        value, _, issued = flights.pop(index)
        latest = index == len(flights)  # the last one issued: what the register wants there
        if not flights:
            del self.raw["pending"][side]
        if unplaceable and not applied:
            self.raw.setdefault("unplaceable", {})[side] = value
        holds = False
        if applied:
            # The record holds our value, unless the platform reported something after the
            # write was issued: that report may be newer than our write (a person in the same
            # second); its own echo, which comes too, then says what is last.
            # Our echoes are no such report: writes to one record land in the order issued,
            # so the answer of the latest one tells what the record holds after them.
            seen = self.seen(side)
            earlier = seen is not None and seen[2] <= issued and seen[0] <= at
            known = self._seen_sequence(side)
            if sequence is not None and known is not None and sequence != known:
                earlier = known < sequence  # the record's own counter says which came last
            if seen is None or earlier or (self._ours(side) and latest):
                self._set_seen(side, at, value, noted, sequence, assumed=True)
                holds = True
        # Taken, and nothing reported since it was issued: only what the platform reports
        # after this answer is news. Otherwise (refused because a person changed the field,
        # a value the platform cannot hold, or a report that may be newer than our write)
        # whatever was reported after the write was issued is news enough to decide again.
        if latest:
            tried = self.raw.setdefault("tried", {})
            count = tried.get(side, [None, 0, 0])[2] + 1
            tried[side] = [value, noted if holds else issued, count]
        return True

    # -- reconcile --------------------------------------------------------------------------
    def wants(
        self,
        sides: Sequence[str],
        project: Callable[[Any, str, str], Any],
        agrees: Callable[[str, Any], bool],
        on_stalled: Callable[[str, Any], None] | None = None,
    ) -> list[Want]:
        """The writes that bring each of ``sides`` to the winner's value.

        ``project(value, from, to)``: the winner's value spelled for another platform, or
        None when it does not flow there; ``agrees(side, value)``: ``value`` on ``side``
        is the winner's value spelled for ``side``.
        """
        winner = self.winner
        if winner is None:
            return []
        wants: list[Want] = []
        for side in sides:
            desired = winner[2] if side == winner[1] else project(winner[2], winner[1], side)
            if desired is None:
                continue
            pending = self.pending(side)
            seen = self.seen(side)
            if pending is not None and pending[0] == desired:
                continue  # on its way
            if self.raw.get("unplaceable", {}).get(side, _MISSING) == desired:
                continue  # the platform cannot hold it (its sink said so): not again
            if pending is None and seen is not None and agrees(side, seen[1]):
                continue
            # The write in flight lands first (commands to a record run in order), unless the
            # platform refuses it: the record then still holds what we saw.
            held = [f[0] for f in reversed(self._in_flight(side))]
            held += [seen[1]] if seen is not None else []
            expect = tuple(dict.fromkeys(held))
            tried = self.raw.get("tried", {}).get(side)
            if tried is not None and pending is None:
                if tried[0] == desired and (seen is None or float(seen[2]) <= float(tried[1])):
                    continue  # written already; nothing new reported since
                if int(tried[2]) >= MAX_REASSERTS:
                    stalled = self.raw.setdefault("stalled", [])
                    if side not in stalled and on_stalled is not None:
                        stalled.append(side)  # said once per winner
                        on_stalled(side, desired)
                    continue
            wants.append(Want(side, desired, expect, reassert=tried is not None))
        return wants


def settle_writes(
    registers: dict[str, dict[str, Any]],
    side: str,
    command_id: str,
    *,
    written: set[str],
    at: float,
    noted: int,
    sequence: int | None = None,
    skipped: set[str] | None = None,
) -> None:
    """Our write ``command_id`` to ``side`` has its answer. ``written``: the fields the
    platform took, as the sink's fingerprints name them; ``skipped``: the fields its sink left
    out because the platform cannot hold the value; ``sequence``: the record's version
    after the write, when the platform has one. Registers are named after the field
    (``status``), per tag (``tag:<name>``: the fingerprint field is ``tags``) or per profile
    field (``profile:<field>``)."""
    for name, raw in registers.items():
        kind, _, rest = name.partition(":")
        field = {"tag": "tags", "profile": rest}.get(kind, name) if rest else name
        Register(raw).settle(
            side,
            command_id,
            applied=field in written,
            at=at,
            noted=noted,
            sequence=sequence,
            unplaceable=field in (skipped or set()),
        )
