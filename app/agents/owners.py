"""The owner's email for the sync stage: a case report that names its owner by id only (every
platform does: ``assignee_id``, ``admin_assignee_id``, ``OwnerId``) gets the email before the
planner sees it, because owners are compared by email across platforms (``streams.owners``).

The link's own memory answers first (``streams.owners.owner_to_resolve``: owners this link
has seen or written, so a copy of the record and the echo of our own assignment cost nothing);
otherwise the platform's agent directory, the very one its sink on this worker uses
(``connectors.base.directory``, cached with a TTL). An owner the lookup cannot give is left
unresolved: the planner then ignores the owner in that report and sends a person's assignment
round again (``Plan.retry_in``), so a slow platform delays one owner, never the link.

The lookups run inside the sync stage's batch, one report after the other, so what they may
cost the batch is bounded twice:

- **per batch**: together they wait at most ``LOOKUP_BUDGET_S`` (``OwnerLookups``); past
  it, a report's owner is answered from the directory's cache or left unresolved, with no
  call. A batch held longer would hold every partition in it, and Positions' tail check
  takes a partition with no progress for three looks 5 s apart for one whose records were
  skipped;
- **per platform**: a lookup that fails, or that runs out of time with half the budget or
  more to answer in, quiets its connector's lookups for ``QUIET_S`` (a 429's
  ``retry_after``, when longer, up to ``MAX_QUIET_S``): meanwhile only the cache answers.
  Without it, an outage costs every batch its budget and sends the platform one call per
  uncached owner (a 429 answered with more calls), each with its own warning. One warning
  says the lookups are quiet, one line says when the platform answers again. A report left
  unresolved by the quiet is decided again once it ends (``quiet_left``), not within it:
  its retries would otherwise all ask the cache, and the owner be lost.

A lookup given up on is not cancelled: the directory's call goes on, and its answer, once it
comes, is cached for the report that next names the owner (``AgentDirectory``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from connectors.base.directory import AgentDirectory
from schemas.errors import DeskstreamError, RateLimitedError
from schemas.models import Envelope
from streams.config import SyncConfig
from streams.owners import OWNER, owner_to_resolve, with_owner_email

__all__ = ["LOOKUP_BUDGET_S", "MAX_QUIET_S", "QUIET_S", "OwnerEmails", "OwnerLookups"]

log = logging.getLogger(__name__)

#: the longest a batch's reports wait for owners' emails, together
LOOKUP_BUDGET_S = 5.0
#: how long a connector's lookups are quiet (cache only) after one failed or ran out of time
QUIET_S = 30.0
#: the longest quiet, whatever a 429's ``retry_after`` says: a report's re-decision waits it
#: out, with its input's commit held meanwhile
MAX_QUIET_S = 120.0

#: (platform, connector id) → that connector's agent directory, if it has one
DirectoryFor = Callable[[str, str], AgentDirectory | None]
#: ``OwnerEmails._fill``: a report, its link's owners, the seconds it may wait
_Fill = Callable[[Envelope, Mapping[str, str], float], Awaitable[Envelope]]


class OwnerEmails:
    """The worker's owner lookups for the sync stage: what each connector's quiet is. A batch
    reads through ``batch()``, which holds its budget.

    ``clock`` must be the event loop's (``time.monotonic``): the budget it measures is waited
    out by ``asyncio.wait_for``."""

    def __init__(
        self,
        config: SyncConfig,
        directory_for: DirectoryFor,
        *,
        budget: float = LOOKUP_BUDGET_S,
        quiet: float = QUIET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._directory_for = directory_for
        self._budget = budget
        self._quiet = min(quiet, MAX_QUIET_S)
        self._clock = clock
        #: (platform, connector id) → the time its lookups may call the platform again
        self._quiet_until: dict[tuple[str, str], float] = {}

    def batch(self) -> OwnerLookups:
        """The lookups of one batch of reports, which share ``budget`` seconds of waiting."""
        return OwnerLookups(self._fill, self._budget, self._clock)

    def quiet_left(self, event: Envelope) -> float:
        """Seconds until the owner ``event`` changed to, still unresolved, may be asked of its
        platform (0: at once, or the report did not change its owner). A re-decision of the
        report waits that long at least, or the quiet would spend its retries on the cache
        (``app.agents.sync``). A report that did not change its owner is not retried for it
        (``streams.flows.case_fields``), and its other waits are not held back."""
        if OWNER not in event.changed_fields:
            return 0.0
        _, agent_id = owner_to_resolve(self._config, {}, event)
        if agent_id is None:
            return 0.0
        until = self._quiet_until.get((event.source.platform.value, event.source.connector_id))
        return 0.0 if until is None else max(0.0, until - self._clock())

    async def _fill(self, event: Envelope, agents: Mapping[str, str], budget: float) -> Envelope:
        event, agent_id = owner_to_resolve(self._config, agents, event)
        if agent_id is None:
            return event
        source = event.source
        connector = (source.platform.value, source.connector_id)
        directory = self._directory_for(*connector)
        if directory is None:
            return event
        quiet = self._clock() < self._quiet_until.get(connector, float("-inf"))
        # The cache answers when it knows, with no task and timer for it and no turn of the
        # loop inside a sync input (app.give_way charges an input's time to the agent).
        if budget <= 0 or quiet or directory.knows_email(agent_id):
            return with_owner_email(event, directory.cached_email(agent_id))
        try:
            email = await asyncio.wait_for(directory.email_of(agent_id), budget)
        except TimeoutError:
            # Slow only if it had a fair share of the budget: with earlier lookups of the
            # batch having spent the rest, a short wait says nothing of the platform.
            if budget >= self._budget / 2:
                self._quiet_for(
                    connector,
                    f"no answer in {budget:.1f} s; if this repeats, check the platform's "
                    "status and the network path from this worker",
                    self._quiet,
                )
            return event
        except DeskstreamError as exc:  # its message says what to check
            retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else 0.0
            self._quiet_for(connector, str(exc), min(max(self._quiet, retry_after), MAX_QUIET_S))
            return event
        if self._quiet_until.pop(connector, None) is not None:  # the platform answered
            log.info("owner lookups answer again platform=%s connector=%s", *connector)
        return with_owner_email(event, email)

    def _quiet_for(self, connector: tuple[str, str], error: str, seconds: float) -> None:
        self._quiet_until[connector] = self._clock() + seconds
        log.warning(
            "owner lookup failed platform=%s connector=%s error=%s; its owner lookups are "
            "quiet for %.0f s: the cache answers, and a report whose owner it lacks is decided "
            "again once they may ask",
            *connector,
            error,
            seconds,
        )


class OwnerLookups:
    """One batch's owner lookups: together they wait ``budget`` seconds at most (the time
    spent planning the batch does not count)."""

    def __init__(self, fill: _Fill, budget: float, clock: Callable[[], float]) -> None:
        self._fill = fill
        self._left = budget
        self._clock = clock

    async def fill(self, event: Envelope, agents: Mapping[str, str]) -> Envelope:
        """``event`` with its owner's email, when it names one by id and it can be found
        (``agents``: the link's memory of its owners, ``LinkState.agents``)."""
        started = self._clock()
        try:
            return await self._fill(event, agents, self._left)
        finally:
            self._left -= self._clock() - started
