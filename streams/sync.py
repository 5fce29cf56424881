"""The sync stage: one link's state and one event (or write result) in, commands and audit
records out. Pure: the agent in ``app.agents.sync`` reads and writes the table around it.

For an event, in order:

1. dedupe: an event id seen within ``dedupe_window_seconds`` is dropped (redelivered
   webhooks, replayed CDC, a worker reprocessing after a crash);
2. scope: only the configured connectors (one per platform) take part;
3. membership: the event's record joins the link; the origin (where the link started) is
   recognised from the link id itself;
4. echo, layer one: a change made by our own service account is an observation of the
   record (``streams.converge``), never a change to copy; a record our create made,
   reported before the create's answer, joins the link here and creates further along its
   own routes, as the answer would have;
5. the flows (``streams.flows``): cases, messages, contacts; case and profile fields
   converge through registers (the winning change, what each record holds, writes in flight).

A Handoff event skips steps 2 to 4 (the AI side is no synced platform, and never an echo):
``streams.flows.handoff`` routes it by the rules' ``handoff`` section.

For a timer (``Decisions.later``): a held contact create whose hold is over goes out, unless
its match arrived meanwhile (``streams.flows.holds``); a hand-off's pending follow-up goes to
the AI side, unless a human took over meanwhile (``streams.flows.handoff``).

For a write result: the record a create made joins the link, mirrors get their ids, the
registers settle the fields the platform took (the sink's fingerprints name them), and every
linked record that still disagrees with a winner is written again (crossed or refused writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base.commands import CREATED_VERSION
from connectors.base.links import case_link_id
from schemas.models import (
    ActorKind,
    AuditRecord,
    Case,
    CommandAction,
    Contact,
    EntityType,
    Envelope,
    SyncCommand,
    Timer,
    WriteOutcome,
    WriteResult,
)
from streams.audit import audit
from streams.config import SyncConfig
from streams.converge import settle_writes
from streams.flows import Decisions, FlowContext, holds
from streams.flows.case_fields import reconcile_case
from streams.flows.cases import create_from, is_acknowledgement, on_case, on_case_echo
from streams.flows.contacts import on_contact, reconcile_contact
from streams.flows.handoff import FOLLOW_UP, on_follow_up, on_handoff, on_handoff_record
from streams.flows.messages import on_message
from streams.owners import remember_written_owner
from streams.state import LinkState

__all__ = ["Plan", "SyncPlanner"]


@dataclass
class Plan:
    state: LinkState
    commands: list[SyncCommand] = field(default_factory=list)
    audits: list[AuditRecord] = field(default_factory=list)
    #: ask again about this event after this many seconds (see ``FlowContext.retry_in``)
    retry_in: float | None = None
    #: decisions to take again when due (``deskstream.timers``)
    timers: list[Timer] = field(default_factory=list)

    def take(self, decisions: Decisions) -> None:
        """Add what ``decisions`` decided to this plan."""
        self.commands += decisions.commands
        self.audits += decisions.audits
        self.timers += decisions.timers


class SyncPlanner:
    def __init__(self, config: SyncConfig) -> None:
        self.config = config
        self._connectors = dict(config.connectors)

    # -- events ---------------------------------------------------------------------------
    def on_event(
        self,
        raw_state: dict[str, Any] | None,
        event: Envelope,
        *,
        now: datetime,
        profile: Contact | None = None,
    ) -> Plan:
        assert event.link_id is not None, "the sync stage only sees linked events"
        kind = "contact" if event.source.entity_type is EntityType.CONTACT else "case"
        state = LinkState.from_json(raw_state) if raw_state else LinkState.new(event.link_id, kind)
        state.steps += 1
        plan = Plan(state)

        def note(stage: str, decision: str, reason: str) -> Plan:
            plan.audits.append(
                audit(state.link_id, stage, decision, reason, at=now, event_id=event.event_id)
            )
            return plan

        if state.seen_before(event.event_id, now.timestamp(), self.config.dedupe_window_seconds):
            return note(
                "dedupe", "duplicate_dropped", "event already handled (redelivery or replay)"
            )
        source = event.source
        side = source.platform.value
        if source.entity_type is EntityType.HANDOFF:
            # The AI side is no synced platform: its clients' hand-offs are routed by the
            # rules' handoff section, whichever client sent them.
            self._join(state, event)
            ctx = FlowContext.of(self.config, state, event, now, profile=profile)
            on_handoff(ctx)
            plan.take(ctx)
            return plan
        if self._connectors.get(side) != source.connector_id:
            return note(
                "sync", "out_of_scope", f"{side}/{source.connector_id} is not a synced connector"
            )
        joined = self._join(state, event)
        ctx = FlowContext.of(self.config, state, event, now, profile=profile)
        if joined and source.entity_type is EntityType.CONTACT:
            holds.on_joined(ctx, side, source.entity_id)  # the match a hold waited for
        if source.actor.kind is ActorKind.INTEGRATION:
            note("echo", "echo_suppressed", "layer 1: made by our own service account")
            if source.entity_type is EntityType.CASE:
                on_case_echo(ctx)  # what the record holds now; crossed writes re-assert
                if joined and state.kind == "case":
                    # The record our create made, reported before the create's answer: its
                    # own routes create further now (the answer will find it joined).
                    create_from(ctx, side)
            plan.take(ctx)
            return plan
        if source.entity_type is EntityType.CASE:
            on_case(ctx)
            if state.handoff.get("platform") == side and isinstance(event.data, Case):
                on_handoff_record(ctx, event.data)
        elif source.entity_type is EntityType.MESSAGE:
            on_message(ctx)
        elif source.entity_type is EntityType.CONTACT:
            on_contact(ctx)
        else:
            ctx.note("sync", "out_of_scope", f"{source.entity_type.value} events are not synced")
        plan.take(ctx)
        plan.retry_in = ctx.retry_in
        return plan

    def _join(self, state: LinkState, event: Envelope) -> bool:
        """The event's record joins the link; True when it was not a member before."""
        source = event.source
        side = source.platform.value
        state.connectors[side] = source.connector_id
        joined = False
        if source.entity_type in (EntityType.CASE, EntityType.CONTACT):
            joined = side not in state.members
            state.members.setdefault(side, source.entity_id)
            if side in state.creating and state.members.get(side):
                state.creating.remove(side)
        if state.origin is None and state.kind == "case":
            record = source.entity_id
            if source.entity_type is EntityType.MESSAGE and event.data is not None:
                record = getattr(event.data, "case_id", record)
            if case_link_id(side, source.connector_id, record) == state.link_id:
                state.origin = side
        return joined

    # -- write results --------------------------------------------------------------------
    def on_write(
        self, raw_state: dict[str, Any] | None, result: WriteResult, *, now: datetime
    ) -> Plan:
        kind = "contact" if result.target.entity_type is EntityType.CONTACT else "case"
        state = LinkState.from_json(raw_state) if raw_state else LinkState.new(result.link_id, kind)
        state.steps += 1
        plan = Plan(state)
        ts = now.timestamp()
        if state.seen_before(f"write:{result.command_id}", ts, self.config.dedupe_window_seconds):
            return plan
        platform = result.target.platform.value
        if state.holds:
            # A held contact create answered: created, linked, or failed.
            answered = Decisions(
                self.config, state, now, f"write:{result.command_id}", result.written_at
            )
            holds.on_written(answered, result)
            plan.take(answered)
        if result.outcome is WriteOutcome.FAILED:
            if platform in state.creating:
                state.creating.remove(platform)  # a later event may try the create again
            self._converge(plan, result, now)
            return plan
        is_ack = is_acknowledgement(state.mirrors, result.command_id)
        joined = False
        if (
            result.target_entity_id
            and not is_ack
            and result.target.entity_type is not EntityType.MESSAGE
        ):
            joined = platform not in state.members
            state.members[platform] = result.target_entity_id
            state.connectors.setdefault(platform, result.target.connector_id)
        if platform in state.creating and platform in state.members:
            state.creating.remove(platform)
        self._resolve_mirrors(state, result)
        self._converge(plan, result, now)
        if joined and state.kind == "case":
            # The new record's own routes may create further (a ticket made from a
            # conversation becomes a CRM case in turn).
            decisions = Decisions(
                self.config, state, now, f"write:{result.command_id}", result.written_at
            )
            create_from(decisions, platform)
            plan.take(decisions)
        return plan

    def _converge(self, plan: Plan, result: WriteResult, now: datetime) -> None:
        """Settle the fields this write carried; a field the platform did not take (a
        person changed it meanwhile, or it cannot hold the value) is decided again."""
        state = plan.state
        if not state.registers:
            return
        written = {fp.rsplit(":", 2)[1] for fp in result.fingerprints if fp.count(":") >= 3}
        version = result.created_ids.get(CREATED_VERSION, "")
        if result.outcome is WriteOutcome.FAILED:
            written = set()
        remember_written_owner(state, result)
        settle_writes(
            state.registers,
            result.target.platform.value,
            result.command_id,
            written=written,
            at=result.written_at.timestamp(),
            noted=state.steps,
            sequence=int(version) if version.isdigit() else None,
            skipped=set(result.skipped_fields),
        )
        decisions = Decisions(
            self.config, state, now, f"write:{result.command_id}", result.written_at
        )
        (reconcile_case if state.kind == "case" else reconcile_contact)(decisions)
        plan.take(decisions)

    # -- timers ---------------------------------------------------------------------------
    def on_timer(self, raw_state: dict[str, Any] | None, timer: Timer, *, now: datetime) -> Plan:
        """A decision asked for earlier is due (``Decisions.later``): a held contact create
        whose hold is over goes out now, unless its match arrived meanwhile."""
        state = LinkState.from_json(raw_state) if raw_state else LinkState.new(timer.link_id, "")
        state.steps += 1
        plan = Plan(state)
        cause = f"timer:{timer.timer_id}"
        if state.seen_before(cause, now.timestamp(), self.config.dedupe_window_seconds):
            return plan
        if timer.purpose == FOLLOW_UP and state.handoff:
            decisions = Decisions(self.config, state, now, cause, timer.set_at)
            on_follow_up(decisions, timer)
            plan.take(decisions)
            return plan
        if timer.purpose != holds.HOLD or state.kind != "contact":
            plan.audits.append(
                audit(
                    state.link_id,
                    "sync",
                    "timer_ignored",
                    f"a {timer.purpose!r} timer has nothing to decide on this link",
                    at=now,
                    event_id=cause,
                )
            )
            return plan
        due = timer.due_at.timestamp()
        decisions = Decisions(
            self.config, state, now, cause, timer.set_at, fired={timer.subject: due}
        )
        reconcile_contact(decisions)
        holds.on_timer_done(decisions, timer.subject)
        plan.take(decisions)
        return plan

    @staticmethod
    def _resolve_mirrors(state: LinkState, result: WriteResult) -> None:
        platform = result.target.platform.value
        prefix = f"pending:{result.command_id}:"
        pending = {
            part
            for value in state.mirrors.values()
            for part in value.split(",")
            if part.startswith(prefix)
        }
        for mirror in sorted(pending):
            created = result.created_ids.get(mirror[len(prefix) :])
            if created:
                state.resolve_mirror(mirror, f"{platform}:{created}")

    @staticmethod
    def is_create(command: SyncCommand) -> bool:
        return command.action is CommandAction.UPSERT
