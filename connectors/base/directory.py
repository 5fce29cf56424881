"""Who the agents of a platform are: an agent id ↔ email directory, read through the
platform's own API, and the cache every use of it goes through.

The same person works a ticket in Zendesk (``assignee_id``), a conversation in Intercom
(``admin_assignee_id``) and a Case in Salesforce (``OwnerId``) under three unrelated ids; the
email is what the three accounts share. The sync stage compares owners by email, so ids are
translated at the edges: an incoming owner's id to its email before the planner sees the event
(``email_of``), an outgoing owner's email to the target's id when a sink writes it
(``agent_for``).

A platform implements ``AgentLookup``: ``by_id`` and ``by_email`` answer every agent the one
call taught them (Intercom lists all admins in one call, so a single lookup teaches the whole
workspace); an empty answer means "no agent has that id / email" (an end user's id, a
deactivated user, a deleted admin). Errors are the usual tree (``RetriableAPIError``,
``FatalAPIError``) and are never cached.

``AgentDirectory`` wraps a lookup with a cache: answers are kept ``ttl`` seconds (agents rarely
change), a miss ("no agent") ``miss_ttl`` seconds, concurrent callers asking for the same key
share one call, and each answer is remembered both ways, so the sink that resolved an email
answers the echo's id without a call. Every question is counted (``cached``, ``called``,
``failed``, or ``skipped`` when only the cache was asked and had nothing: ``cached_email``)
through ``on_lookup``, which the worker points at a metric.

``owner_write`` is what every sink does with the owner a command carries: the target's agent
id for its email, nobody for an unassign, or the reason the owner is left out of the write (no
agent has that email there: not an error, the rest of the write goes ahead).
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from connectors.base.links import normalise_email
from schemas.models import Actor

__all__ = ["Agent", "AgentDirectory", "AgentLookup", "LookupObserver", "OwnerWrite", "owner_write"]

#: entries kept per direction (a contact center has hundreds of agents, not millions)
_MAX_ENTRIES = 10_000
#: how long "no agent has this" is believed when the caller gives no ``miss_ttl``
_MISS_TTL_S = 300.0

#: ``on_lookup(direction, outcome)``: direction ``id_to_email`` or ``email_to_id``; outcome
#: ``cached`` (no call), ``called`` (an API call answered), ``failed`` (the call raised) or
#: ``skipped`` (asked for the cache only, which had no answer: ``cached_email``)
LookupObserver = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Agent:
    """A person who can own a case on the platform: an agent or admin with an email."""

    id: str
    email: str
    name: str | None = None


class AgentLookup(abc.ABC):
    """A platform's agents as its official API answers them (no cache: see
    ``AgentDirectory``)."""

    platform: ClassVar[str]

    @abc.abstractmethod
    async def by_id(self, agent_id: str) -> list[Agent]:
        """The agents one call teaches, among them ``agent_id`` when it is an agent with an
        email; empty when it is not."""

    @abc.abstractmethod
    async def by_email(self, email: str) -> list[Agent]:
        """The agents one call teaches, among them the agent with ``email`` (lower case)
        when there is one."""


@dataclass(slots=True)
class _Entry:
    value: str | None
    until: float


class _Table:
    """One direction's answers, oldest forgotten first past ``_MAX_ENTRIES``."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, key: str, now: float) -> _Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.until <= now:
            return None
        return entry

    def put(self, key: str, value: str | None, until: float) -> None:
        self.entries[key] = _Entry(value, until)
        self.entries.move_to_end(key)
        while len(self.entries) > _MAX_ENTRIES:
            self.entries.popitem(last=False)


class AgentDirectory:
    """``AgentLookup`` behind a time-limited cache shared by every caller of a worker (the
    sync stage resolving an incoming owner, the sink resolving an outgoing one)."""

    def __init__(
        self,
        lookup: AgentLookup,
        *,
        ttl: float = 3600.0,
        miss_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_lookup: LookupObserver | None = None,
    ) -> None:
        self.lookup = lookup
        self.platform = lookup.platform
        self._ttl = ttl
        self._miss_ttl = min(ttl, _MISS_TTL_S) if miss_ttl is None else miss_ttl
        self._clock = clock
        self.on_lookup = on_lookup
        self._emails = _Table()  # agent id → email (None: not an agent)
        self._ids = _Table()  # email → agent id (None: no agent has it)
        self._flights: dict[tuple[str, str], asyncio.Future[str | None]] = {}

    async def email_of(self, agent_id: str) -> str | None:
        """The email of agent ``agent_id`` (lower case); None when it is not an agent with
        an email on this platform."""
        return await self._answer("id_to_email", agent_id, self._emails, self.lookup.by_id)

    def knows_email(self, agent_id: str) -> bool:
        """Whether ``email_of`` would answer from the cache, without a call (not counted)."""
        return self._emails.get(agent_id, self._clock()) is not None

    def cached_email(self, agent_id: str) -> str | None:
        """``email_of`` without a call, for a caller that cannot wait for the platform: the
        cached answer, or None (counted ``skipped``) when the cache has none."""
        entry = self._emails.get(agent_id, self._clock())
        self._count("id_to_email", "skipped" if entry is None else "cached")
        return entry.value if entry is not None else None

    async def agent_for(self, email: str) -> str | None:
        """The id of the agent whose email is ``email``; None when no agent has it here."""
        key = normalise_email(email)
        return await self._answer("email_to_id", key, self._ids, self.lookup.by_email)

    def forget(self, *, agent_id: str | None = None, email: str | None = None) -> None:
        """Drop what is known of an agent (the platform refused an id the cache gave)."""
        if agent_id is not None:
            self._emails.entries.pop(agent_id, None)
        if email is not None:
            self._ids.entries.pop(normalise_email(email), None)

    async def _answer(
        self,
        direction: str,
        key: str,
        table: _Table,
        fetch: Callable[[str], Awaitable[list[Agent]]],
    ) -> str | None:
        entry = table.get(key, self._clock())
        if entry is not None:
            self._count(direction, "cached")
            return entry.value
        flight = self._flights.get((direction, key))
        if flight is None:
            # The call is a task of its own: an asker that gives up (a timeout) does not
            # cancel it for the others waiting on it, and its answer is still learned.
            flight = asyncio.ensure_future(self._fetch(direction, key, table, fetch))
            self._flights[(direction, key)] = flight
            flight.add_done_callback(lambda done: self._landed(direction, key, done))
        else:  # someone asked already: share the answer of their call
            self._count(direction, "cached")
        return await asyncio.shield(flight)

    async def _fetch(
        self,
        direction: str,
        key: str,
        table: _Table,
        fetch: Callable[[str], Awaitable[list[Agent]]],
    ) -> str | None:
        try:
            agents = await fetch(key)
        except Exception:
            self._count(direction, "failed")
            raise
        self._count(direction, "called")
        self._learn(agents)
        known = table.get(key, self._clock())
        if known is None:  # the call taught nothing about this key: nobody has it
            table.put(key, None, self._clock() + self._miss_ttl)
        return known.value if known is not None else None

    def _landed(self, direction: str, key: str, flight: asyncio.Future[str | None]) -> None:
        del self._flights[(direction, key)]
        if not flight.cancelled():
            flight.exception()  # retrieved here: every asker may have given up already

    def _learn(self, agents: list[Agent]) -> None:
        until = self._clock() + self._ttl
        for agent in agents:
            email = normalise_email(agent.email)
            self._emails.put(agent.id, email, until)
            self._ids.put(email, agent.id, until)

    def _count(self, direction: str, outcome: str) -> None:
        if self.on_lookup is not None:
            self.on_lookup(direction, outcome)


@dataclass(frozen=True, slots=True)
class OwnerWrite:
    """The owner a sink writes: ``agent_id`` (None: nobody, an unassign), the canonical
    value it stands for (the email, ``""`` for nobody: what the write's fingerprint holds),
    or ``skipped``: why the owner is left out of the write."""

    agent_id: str | None = None
    email: str = ""
    skipped: str | None = None


async def owner_write(
    agents: AgentDirectory | None, assignee: Actor | None, *, platform: str
) -> OwnerWrite:
    """What to write for a command's ``assignee`` (an agent named by email, or None for
    nobody) on ``platform`` (its name as people write it)."""
    if assignee is None or not assignee.email:
        return OwnerWrite()
    email = normalise_email(assignee.email)
    agent_id = await agents.agent_for(email) if agents is not None else None
    if agent_id is None:
        return OwnerWrite(
            email=email,
            skipped=(
                f"assignee left out: no {platform} agent has the email {email}; create the "
                f"agent in {platform} with that email (or add it to theirs), or map the email "
                "to an agent's in the rules (the route's assignee.map), then reassign"
            ),
        )
    return OwnerWrite(agent_id, email)
