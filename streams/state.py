"""What the sync stage remembers about one link, kept in a Faust table keyed by link id.

A plain dataclass with a hand-written JSON mapping rather than a pydantic model: the state is
read and written on every event, so it must cost microseconds, and its contents come only from
this code (the table's changelog is ours), so there is nothing to validate on the way in.

Bounded by construction: seen event ids expire (and are capped);
the thread is capped at ``max_thread_messages``; the outbox holds only inputs still in flight;
everything else is one entry per platform or per field (holds: one per platform).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["MAX_AGENTS", "MAX_SEEN", "LinkState"]

#: event ids remembered per link, whatever the time window says
MAX_SEEN = 2000
#: owners (agent ids per platform) remembered per link
MAX_AGENTS = 20


@dataclass(slots=True)
class LinkState:
    link_id: str
    #: "case" (conversations, tickets, cases) or "contact" (contacts, users)
    kind: str
    #: platform → the linked record there (a conversation id, a ticket id, a case id)
    members: dict[str, str] = field(default_factory=dict)
    #: platform → connector id of that record
    connectors: dict[str, str] = field(default_factory=dict)
    #: the platform the link started on (the record mirrored to the others)
    origin: str | None = None
    #: a create was issued to this platform (its write result may still be on its way)
    creating: list[str] = field(default_factory=list)
    #: event id → first seen (epoch s): redeliveries and replays are dropped
    seen: dict[str, float] = field(default_factory=dict)
    #: "platform:message id" → its mirrors, comma-separated, one per platform it was copied
    #: to ("platform:message id", or "pending:<command>:<part>" until the write answers);
    #: or a marker (``streams.flows.messages.MADE_PRIVATE``; ``ack:*`` keys)
    mirrors: dict[str, str] = field(default_factory=dict)
    #: canonical messages of the origin record, oldest first (JSON of schemas.models.Message)
    thread: list[dict[str, Any]] = field(default_factory=list)
    #: message ids of ``thread``, in the same order
    thread_ids: list[str] = field(default_factory=list)
    #: latest canonical record per platform (JSON of Case or Contact)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: case field (``status``, ``priority``, ``tag:<name>``) → its convergence register
    #: (``streams.converge``: the winning change, what each record holds, writes in flight)
    registers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: platform → a contact create held there for a match by email (``streams.flows.holds``):
    #: ``since``, ``until`` (epoch s), ``seconds``; ``command`` once released as an upsert
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: "platform:agent id" → that agent's email, for the owners this link has seen or
    #: written (``streams.owners``): an owner reported again, or the echo of our own
    #: assignment, is known without asking the platform; the newest ``MAX_AGENTS`` are kept
    agents: dict[str, str] = field(default_factory=dict)
    #: inputs (events, write results) this link has processed: orders what the registers
    #: noted, where two wall-clock readings could tie
    steps: int = 0
    #: outputs of inputs not yet known to be in Kafka (``streams.outbox``), oldest first
    outbox: list[dict[str, Any]] = field(default_factory=list)
    #: the AI hand-off this link started with (``streams.flows.handoff``): the platform it
    #: went to, the client's conversation, and the pending follow-up's timer and assignee
    handoff: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, link_id: str, kind: str) -> LinkState:
        return cls(link_id=link_id, kind=kind)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LinkState:
        # States written before the convergence registers carry ``values``, ``clocks`` and
        # ``fingerprints``: dropped (the registers rebuild from the next reports).
        return cls(**{k: v for k, v in raw.items() if k in _FIELDS})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    # -- dedupe -------------------------------------------------------------------------
    def seen_before(self, event_id: str, now: float, window: float) -> bool:
        """True when the event was already handled; otherwise remember it."""
        self._expire(self.seen, now - window, MAX_SEEN)
        if event_id in self.seen:
            return True
        self.seen[event_id] = now
        return False

    @staticmethod
    def _expire(entries: dict[str, float], before: float, cap: int) -> None:
        # Dicts keep insertion order, which is time order here: drop from the front.
        while entries:
            oldest, at = next(iter(entries.items()))
            if at >= before and len(entries) <= cap:
                break
            del entries[oldest]

    # -- owners -------------------------------------------------------------------------
    def remember_agent(self, platform: str, agent_id: str, email: str) -> None:
        key = f"{platform}:{agent_id}"
        self.agents.pop(key, None)
        self.agents[key] = email
        while len(self.agents) > MAX_AGENTS:
            del self.agents[next(iter(self.agents))]

    # -- mirrors ------------------------------------------------------------------------
    def add_mirror(self, key: str, mirror: str) -> None:
        """One more copy of message ``key`` (on another platform)."""
        held = self.mirrors.get(key)
        self.mirrors[key] = f"{held},{mirror}" if held else mirror

    def is_mirror(self, key: str) -> bool:
        """Is message ``key`` a copy we wrote of another message?"""
        return any(key in value.split(",") for value in self.mirrors.values())

    def resolve_mirror(self, pending: str, mirror: str) -> None:
        """The write ``pending`` named answered: its copy is ``mirror``."""
        for key, value in self.mirrors.items():
            parts = value.split(",")
            if pending in parts:
                self.mirrors[key] = ",".join(mirror if p == pending else p for p in parts)

    # -- thread -------------------------------------------------------------------------
    def add_to_thread(self, message_id: str, message: dict[str, Any], cap: int) -> bool:
        """Keep the origin's messages in order; False when the message is already there."""
        if message_id in self.thread_ids:
            return False
        self.thread.append(message)
        self.thread_ids.append(message_id)
        if len(self.thread) > cap:
            del self.thread[0]
            del self.thread_ids[0]
        return True


_FIELDS = frozenset(f.name for f in fields(LinkState))
