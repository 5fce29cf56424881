"""The sync stage under a crash at any point between writing a link's state and Kafka having
what the input caused (``streams.outbox.step``, driven as the sync agent drives it).

A "crash" here is what Kafka leaves behind: the table's changelog holds the state written
(or not), the commands topic holds the commands sent (or not), and the input is read again
from its uncommitted offset, at the same position, by a worker that knows nothing else.
"""

from __future__ import annotations

from typing import Any

from connectors.base.links import case_link_id
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CommandAction,
    Envelope,
    Op,
    Platform,
    Timer,
    WriteResult,
)
from streams import state_codec
from streams.config import SyncConfig
from streams.outbox import Position, Step, step
from streams.sync import SyncPlanner
from tests.streams.builders import IC, ZD, World

SYNC = "deskstream.sync"
CONFIG = SyncConfig.model_validate({"connectors": {"intercom": IC, "zendesk": ZD}})


class Partition:
    """One partition of the sync topic, the link's table entry, and what has been acked."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.planner = SyncPlanner(CONFIG)
        #: the link's value in the table (``streams.state_codec``)
        self.raw: bytes | None = None
        self.offset = 0
        #: inputs below this offset have their outputs in Kafka
        self.delivered = 0

    def read(
        self,
        record: Envelope | WriteResult | Timer,
        *,
        offset: int | None = None,
        rerun: bool = False,
    ) -> Step:
        """The agent's step for ``record`` at ``offset`` (the next one by default); its
        state goes to the table as the agent writes it."""
        at = self.offset if offset is None else offset
        done = step(
            self.planner,
            self.raw,
            record,
            position=Position(SYNC, 0, at),
            delivered_below=lambda topic, partition: self.delivered,
            may_have_run=rerun,
            now=self.world.tick(),
        )
        if done.state is not None:
            self.raw = done.state
        if offset is None:
            self.offset += 1
        return done

    @property
    def state(self) -> dict[str, Any] | None:
        return state_codec.decode(self.raw).to_json() if self.raw is not None else None

    def acked(self) -> None:
        """Everything read so far is delivered (and its offset committable)."""
        self.delivered = self.offset


def _escalation(world: World, part: Partition) -> Envelope:
    part.read(world.conversation(op=Op.CREATE))
    part.read(world.part("p-1", "I was charged twice"))
    part.acked()
    return world.conversation(tags=["escalate"], changed=["tags"])


def test_an_input_read_again_after_its_state_was_written_sends_its_commands_again() -> None:
    world = World()
    part = Partition(world)
    tagged = _escalation(world, part)
    at = part.offset
    first = part.read(tagged)
    [create] = first.commands
    assert create.action is CommandAction.UPSERT
    assert create.attempt == 1
    # Crash: the changelog has the state (the input is "seen"), the commands never landed.
    # A new worker restores the state and reads the input again at the same position.
    again = part.read(tagged, offset=at, rerun=True)
    assert again.resent
    assert [c.command_id for c in again.commands] == [create.command_id]
    assert [c.attempt for c in again.commands] == [2]  # the sink checks before writing
    assert [a.decision for a in again.audits] == [a.decision for a in first.audits]


def test_a_redelivery_at_another_position_is_still_a_duplicate() -> None:
    world = World()
    part = Partition(world)
    tagged = _escalation(world, part)
    part.read(tagged)
    redelivered = part.read(tagged)  # the platform sent the same webhook twice
    assert not redelivered.resent
    assert redelivered.commands == []
    assert [a.decision for a in redelivered.audits] == ["duplicate_dropped"]
    assert redelivered.state is None  # nothing changed: nothing written to the table


def test_entries_leave_the_state_once_their_outputs_are_delivered() -> None:
    world = World()
    part = Partition(world)
    tagged = _escalation(world, part)
    at = part.offset
    part.read(tagged)
    assert part.state is not None
    assert [e["offset"] for e in part.state["outbox"]] == [at]
    part.acked()
    part.read(world.part("p-2", "any news?"))  # the link's next input prunes
    assert [e["offset"] for e in part.state["outbox"]] == [at + 1]
    # Read again once delivered (the crash came after Kafka had the commands but before
    # the offset was committed): a plain duplicate, nothing re-sent.
    again = part.read(tagged, offset=at, rerun=True)
    assert not again.resent
    assert again.commands == []


def test_a_replanned_input_whose_state_was_lost_goes_out_as_possibly_executed() -> None:
    world = World()
    part = Partition(world)
    tagged = _escalation(world, part)
    before = part.raw  # the changelog's record of it
    at = part.offset
    [create] = part.read(tagged).commands
    # Crash the other way round: the commands landed, the changelog record did not.
    part.raw = before
    [again] = part.read(tagged, offset=at, rerun=True).commands
    assert again.command_id == create.command_id  # deterministic: the sink sees the same id
    assert again.attempt == 2  # and knows it may have executed it


def test_a_deferred_re_decision_is_asked_for_again_when_its_input_is_read_again() -> None:
    world = World()
    part = Partition(world)
    # A new Zendesk ticket from a requester named by id only: acknowledged once the email is
    # known, so the planner asks again later.
    own = case_link_id("zendesk", ZD, "t-60")
    anonymous = world.ticket(ticket_id="t-60", link=own, op=Op.CREATE)
    assert isinstance(anonymous.data, Case)
    requester = Actor(kind=ActorKind.CUSTOMER, id="u-77")
    ticket = anonymous.model_copy(
        update={"data": anonymous.data.model_copy(update={"requester": requester})}
    )
    at = part.offset
    first = part.read(ticket)
    assert first.retry_in is not None
    again = part.read(ticket, offset=at, rerun=True)
    assert again.resent
    assert again.retry_in == first.retry_in


def test_a_timer_asked_for_is_asked_for_again_when_its_input_is_read_again() -> None:
    """A held contact create's timer (``streams.flows.holds``) is an output like a command:
    a crash after the state (with the hold) was written and before the timer reached Kafka
    must not leave the hold without its end."""
    world = World()
    part = Partition(world)
    contact = world.contact(Platform.INTERCOM, IC, "c-1", name="Maria", changed=["name"])
    at = part.offset
    first = part.read(contact)
    [timer] = first.timers
    assert first.commands == []
    again = part.read(contact, offset=at, rerun=True)
    assert again.resent
    assert again.timers == [timer]  # the same id: the sync stage drops a second copy
    due = part.read(timer)
    [create] = due.commands
    assert create.action is CommandAction.UPSERT
    assert part.read(timer).commands == []  # the timer read again: a duplicate
