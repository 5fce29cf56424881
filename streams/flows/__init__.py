"""The flows between linked records, one module per concern, all pure.

Each flow takes a ``FlowContext`` (the link's state, the event, the config, the time) and adds
commands and audit records to it; the planner in ``streams.sync`` decides which flows an event
reaches.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base.commands import OPTION_SOURCE_PLATFORM
from schemas.models import (
    AuditRecord,
    CommandAction,
    Contact,
    EntityData,
    EntityType,
    Envelope,
    Message,
    SyncCommand,
    Timer,
)
from streams.audit import audit
from streams.config import SyncConfig
from streams.emit import make_command
from streams.state import LinkState

__all__ = ["Decisions", "FlowContext"]

_TIMER_NAMESPACE = uuid.UUID("5c1d7e0a-2b9f-4c63-8e47-3a0f6d9b1e24")  # fixed forever


@dataclass
class Decisions:
    """What one step of the sync stage decides for a link: commands and audit records, all
    caused by ``cause_id`` (an event id, or ``write:<command id>`` for a write result)."""

    config: SyncConfig
    state: LinkState
    now: datetime
    cause_id: str
    #: when the cause reached Deskstream (commands carry it for end-to-end latency)
    caused_at: datetime | None
    commands: list[SyncCommand] = field(default_factory=list)
    audits: list[AuditRecord] = field(default_factory=list)
    #: decisions to take again later (``Timer``s, sent to ``deskstream.timers``)
    timers: list[Timer] = field(default_factory=list)
    #: subject → due time (epoch s) of the timer this step decides: a hold ending by then is
    #: over, whatever this worker's clock says (the timer's worker saw the time pass, and
    #: two workers' clocks differ by a little)
    fired: dict[str, float] = field(default_factory=dict)
    #: the cause is a backfill's read: the commands say so, and live ones go first in the sinks
    backfill: bool = field(default=False, kw_only=True)

    @property
    def ts(self) -> float:
        return self.now.timestamp()

    def later(self, purpose: str, subject: str, due: float) -> Timer:
        """Decide ``purpose`` about ``subject`` again at ``due`` (epoch s), durably: the
        timer waits in Kafka, not in a worker. Its id is derived from this cause, so the
        same input read again asks for the same timer."""
        timer_id = uuid.uuid5(
            _TIMER_NAMESPACE, f"{self.state.link_id}\x1f{purpose}\x1f{subject}\x1f{self.cause_id}"
        )
        timer = Timer(
            timer_id=str(timer_id),
            link_id=self.state.link_id,
            purpose=purpose,
            subject=subject,
            due_at=datetime.fromtimestamp(due, UTC),
            set_at=self.now,
            caused_by_event_id=self.cause_id,
        )
        self.timers.append(timer)
        return timer

    def connector_for(self, platform: str) -> str:
        return self.state.connectors.get(platform) or self.config.connectors[platform]

    def stalled(self, field: str) -> Callable[[str, Any], None]:
        """The note for a register that stopped writing a winner to a record (its safety
        cap): somebody has to look."""

        def note(side: str, value: Any) -> None:
            self.note(
                "sync",
                "convergence_stalled",
                f"{side} still does not hold {field}={value!r} after repeated writes; the sync "
                f"stops writing it until a person changes {field} again. Check the record on "
                f"{side} and the sink's audit records for why the value does not stay",
                field=field,
            )

        return note

    def note(self, stage: str, decision: str, reason: str, **details: Any) -> None:
        self.audits.append(
            audit(
                self.state.link_id,
                stage,
                decision,
                reason,
                at=self.now,
                event_id=self.cause_id,
                details={k: str(v) for k, v in details.items()},
            )
        )

    def emit(
        self,
        target: str,
        entity_type: EntityType,
        action: CommandAction,
        data: EntityData,
        *,
        source: str,
        changed_fields: list[str] | None = None,
        thread: list[Message] | None = None,
        contact: Contact | None = None,
        options: dict[str, str] | None = None,
        part: str = "",
        reason: str,
        attempt: int = 1,
    ) -> SyncCommand:
        """``attempt`` 2: a command that may meet what an earlier one wrote (the sink looks
        before it writes; ``connectors.base.sink``)."""
        command = make_command(
            self.state,
            cause_id=self.cause_id,
            caused_at=self.caused_at,
            platform=target,
            connector_id=self.connector_for(target),
            entity_type=entity_type,
            action=action,
            data=data,
            changed_fields=changed_fields or [],
            thread=thread or [],
            contact=contact,
            options={OPTION_SOURCE_PLATFORM: source, **(options or {})},
            entity_id=self.state.members.get(target),
            now=self.now,
            part=part,
            backfill=self.backfill,
            attempt=attempt,
        )
        self.commands.append(command)
        self.audits.append(
            audit(
                self.state.link_id,
                "sync",
                f"{action.value}_{entity_type.value}_on_{target}",
                reason,
                at=self.now,
                event_id=self.cause_id,
                command_id=command.command_id,
                details={"fields": ",".join(command.changed_fields)}
                if command.changed_fields
                else {},
            )
        )
        return command


@dataclass
class FlowContext(Decisions):
    """Decisions caused by one event."""

    event: Envelope = field(kw_only=True)
    #: the customer's profile from the contact link, when known (routing, identity)
    profile: Contact | None = field(default=None, kw_only=True)
    #: seconds after which the same event should be decided again (information it needs is
    #: on its way from another partition); None: the decision is final
    retry_in: float | None = field(default=None, kw_only=True)

    @classmethod
    def of(
        cls,
        config: SyncConfig,
        state: LinkState,
        event: Envelope,
        now: datetime,
        *,
        profile: Contact | None = None,
    ) -> FlowContext:
        return cls(
            config,
            state,
            now,
            event.event_id,
            event.ingested_at,
            event=event,
            profile=profile,
            backfill=event.source.snapshot,
        )

    @property
    def side(self) -> str:
        """The platform of the record this event is about."""
        return self.event.source.platform.value

    @property
    def source_time(self) -> float:
        return self.event.source.occurred_at.timestamp()

    def emit_here(
        self,
        target: str,
        entity_type: EntityType,
        action: CommandAction,
        data: EntityData,
        **kwargs: Any,
    ) -> SyncCommand:
        """``emit`` on behalf of this event's platform (the mirrored message's origin)."""
        return self.emit(target, entity_type, action, data, source=self.side, **kwargs)
