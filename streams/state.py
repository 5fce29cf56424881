"""What the sync stage remembers about one link, kept in a Faust table keyed by link id.

A plain dataclass rather than a pydantic model: the state is read and written on every
event, so it must cost microseconds, and its contents come only from this code (the table's
changelog is ours), so there is nothing to validate on the way in. The table holds it in the
compact encoding of ``streams.state_codec``.

Bounded whatever the link's history (issue 11: at most a few KB):

- ``seen``: the recent input ids, as ``streams.recent_ids`` bytes (12 bytes an id, at most
  ``MAX_SEEN``, forgotten after the dedupe window);
- ``mirrors``: the newest ``MAX_MIRRORS`` copied messages, plus the ones still pending, the
  markers and the link's first mirrored message (see ``trim_mirrors``);
- ``thread``: only while a create may still need the history (``drop_thread``), capped at
  ``max_thread_messages``;
- ``outbox``: only inputs whose outputs may not be in Kafka yet (``streams.outbox``);
- ``agents``: the newest ``MAX_AGENTS``;
- everything else is one entry per platform or per field (``holds``: one per platform).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams import recent_ids

__all__ = ["MAX_AGENTS", "MAX_MIRRORS", "MAX_SEEN", "LinkState"]

#: input ids remembered per link, whatever the time window says (12 bytes each)
MAX_SEEN = 160
#: owners (agent ids per platform) remembered per link
MAX_AGENTS = 8
#: settled message mirrors remembered per link (pending ones and markers come on top)
MAX_MIRRORS = 12

#: a mirror still waiting for its write's answer (``pending:<command id>:<part>``)
PENDING = "pending:"
#: ``mirrors`` keys that are markers, not messages (acknowledgements)
_MARKER_PREFIX = "ack:"


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
    #: input ids handled lately (``streams.recent_ids``): redeliveries and replays are dropped
    seen: bytes = b""
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
        """The state from its JSON form (``to_json``, or the table's JSON of old releases,
        whose ``seen`` was an id → time map and whose ``values``, ``clocks`` and
        ``fingerprints`` predate the registers: dropped, the registers rebuild from the
        next reports)."""
        seen = raw.get("seen") or b""
        return cls(
            link_id=raw["link_id"],
            kind=raw["kind"],
            members=raw.get("members") or {},
            connectors=raw.get("connectors") or {},
            origin=raw.get("origin"),
            creating=raw.get("creating") or [],
            seen=_seen_from_map(seen) if isinstance(seen, dict) else bytes(seen),
            mirrors=raw.get("mirrors") or {},
            thread=raw.get("thread") or [],
            thread_ids=raw.get("thread_ids") or [],
            records=raw.get("records") or {},
            registers=raw.get("registers") or {},
            holds=raw.get("holds") or {},
            agents=raw.get("agents") or {},
            steps=raw.get("steps") or 0,
            handoff=raw.get("handoff") or {},
            outbox=raw.get("outbox") or [],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view (tests and debugging; the table uses ``streams.state_codec``).
        Hand-mapped, not ``dataclasses.asdict``: that deep-copies every nested value."""
        return {
            "link_id": self.link_id,
            "kind": self.kind,
            "members": self.members,
            "connectors": self.connectors,
            "origin": self.origin,
            "creating": self.creating,
            "seen": self.seen.hex(),
            "mirrors": self.mirrors,
            "thread": self.thread,
            "thread_ids": self.thread_ids,
            "records": self.records,
            "registers": self.registers,
            "holds": self.holds,
            "agents": self.agents,
            "steps": self.steps,
            "handoff": self.handoff,
            "outbox": self.outbox,
        }

    # -- dedupe -------------------------------------------------------------------------
    def seen_before(self, input_id: str, now: float, window: int) -> bool:
        """True when the input was already handled within ``window`` seconds; otherwise
        remember it (the oldest id beyond ``MAX_SEEN`` is forgotten)."""
        key, at = recent_ids.digest(input_id), int(now)
        if recent_ids.contains(self.seen, key, now=at, window=window):
            return True
        self.seen = recent_ids.remember(
            self.seen, [key], now=at, window=window, max_ids=MAX_SEEN
        ).state
        return False

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

    def trim_mirrors(self) -> None:
        """Forget the oldest settled mirrors beyond ``MAX_MIRRORS``. Kept whatever their age:
        mirrors still pending (their answer must find them), markers, and the link's first
        mirrored message, which some platforms report again with every
        notification of the record (a new event id each time, so only its mirror stops a
        second copy). A message older than the kept ones that is reported again after the
        dedupe windows (normalize's and ``seen``) would be copied again: the price of a
        bounded state, paid only by links with more than ``MAX_MIRRORS`` messages."""
        excess = len(self.mirrors) - MAX_MIRRORS
        if excess <= 0:
            return
        keep = next(
            (k for k, v in self.mirrors.items() if not k.startswith(_MARKER_PREFIX) and ":" in v),
            None,
        )  # the first message's mirror, not a marker such as a failed create's id
        for key in list(self.mirrors):
            value = self.mirrors[key]
            if key == keep or key.startswith(_MARKER_PREFIX) or PENDING in value:
                continue
            if ":" not in value:  # a marker value (made private): small, and must stay
                continue
            del self.mirrors[key]
            excess -= 1
            if excess <= 0:
                return

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

    def drop_thread(self) -> None:
        """Every record a create could make exists: the history is not needed any more."""
        self.thread.clear()
        self.thread_ids.clear()


def _seen_from_map(seen: dict[str, float]) -> bytes:
    """Old releases' ``seen`` (input id → first seen, oldest first) as ``recent_ids``
    bytes: the newest ``MAX_SEEN`` ids with their own times."""
    state = b""
    for input_id, at in list(seen.items())[-MAX_SEEN:]:
        key = recent_ids.digest(input_id)
        # The widest window keeps them all: the next ``seen_before`` applies the real one.
        state = recent_ids.remember(state, [key], now=int(at), window=2**31, max_ids=MAX_SEEN).state
    return state
