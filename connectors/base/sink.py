"""The write side of a connector: one command in, one result out, or a typed error.

A sink executes one ``SyncCommand`` against its platform and returns a ``SinkResult``. It
makes every write idempotent on its own terms (Zendesk ``Idempotency-Key`` and ``external_id``
= link id, Intercom lookups before creates, Salesforce upsert by external id), and reports
the fingerprints of what it wrote so the sync stage can recognise the echo.

Errors are the caller's instructions: ``RateLimitedError`` (wait ``retry_after``, pause the
partition), ``RetriableAPIError`` (back off and retry), ``FatalAPIError`` (dead-letter the
command with the error). Retrying is not the sink's job: ``connectors.base.retry`` does it in
one place for every platform.

Ambiguous writes: the platform may apply a write and its answer be lost (a 5xx from a gateway,
a reset, a timeout while waiting: ``connectors.base.http.AmbiguousAPIError``). A retry must
then not write a second copy. The contract between the sink runner and every sink:

- The runner hands a command to ``execute`` with ``attempt >= 2`` whenever it may have been
  executed before: redelivered after a rebalance or a crash, re-emitted by the sync stage
  after a crash, re-sent from the dead-letter topic. ``attempt == 1`` promises a first run.
- A sink remembers (bounded, in memory) each command whose attempt in this process failed
  with a ``RetriableAPIError`` other than ``RateLimitedError`` (a 429 refuses before
  anything is written), or with a ``RateLimitedError`` after an earlier call of the same
  command was accepted: the runner's retries re-run the command unchanged, at the same
  ``attempt``.
- Every write that is not idempotent by itself checks before writing when either holds
  ("attempt > 1 or uncertain ⇒ read before retry"): an idempotency key where the platform
  has one (Zendesk ticket create), otherwise a lookup of what an earlier attempt left (a
  comment or reply by its body, a contact by email or external id, a ticket by external id).
  Idempotent writes that leave no trace when repeated (add a tag that is there, an upsert
  by key) need no check. Setting values is idempotent but not silent: a repeat is another
  write on the platform (an audit, a change event, a notification, our write seen twice),
  so a case/update that may have run before reads the record and writes nothing when it
  already holds every value, answering with what it holds as applied.
- What the check cannot see is each sink's stated residual window (its module docstring):
  a duplicate only when the earlier copy has left the lookback, a lost message only when a
  different message with the very same body lies within it.

What every sink shares lives in this base, once: ``execute`` counts the command's API calls
(``connectors.base.http.counting``: only this task's, since lanes run commands of several
partitions at once on one client) into ``SinkResult.api_calls``, remembers the commands that
may have landed (``may_have_run``) and logs the outcome; ``budget`` is the platform client's
``RateBudget``, to which the sink runner gives this worker's share of the commands partitions,
so every platform's budget takes its share the same way. A platform implements ``write``.
"""

from __future__ import annotations

import abc
import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import ClassVar, TypeVar

from connectors.base.directory import AgentDirectory
from connectors.base.http import ApiClient, counting
from connectors.base.ratelimit import RateBudget
from schemas.errors import FatalAPIError, RateLimitedError, RetriableAPIError
from schemas.models import AvroRecord, SyncCommand

__all__ = ["UNCERTAIN_REMEMBERED", "Sink", "SinkResult", "command_data"]

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=AvroRecord)

#: commands a sink remembers as "an attempt here may have landed" (oldest forgotten first)
UNCERTAIN_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class SinkResult:
    #: the record written (the new id after a create)
    target_entity_id: str | None
    #: HTTP status of the last call that mattered
    status_code: int | None
    #: API calls this command cost (lookups included): the "calls per synced change" figure
    api_calls: int
    #: False when the platform already had this state and nothing was written
    written: bool = True
    #: own-write fingerprints (``connectors.base.fingerprints.fingerprint``)
    fingerprints: list[str] = field(default_factory=list)
    #: a short, secret-free sentence for the audit record
    detail: str = ""
    #: ids the platform gave to parts of the write (e.g. source message id → comment id)
    created_ids: dict[str, str] = field(default_factory=dict)
    #: changed fields left out of the write on purpose (not an error: e.g. an owner with no
    #: agent on the platform); ``detail`` says why and what to do
    skipped: list[str] = field(default_factory=list)


class Sink(abc.ABC):
    """One platform's writes. Subclasses hand the base their ``client`` (the ``ApiClient``
    every call goes through) and implement ``write``; they ask ``may_have_run`` before a
    write that is not idempotent by itself."""

    platform: ClassVar[str]
    #: the platform's agents (id ⇄ email) on this sink's client, for the owner ⇄ assignee
    #: flow: the sink resolves the owner it writes, and the sync stage the owner a report
    #: names (``connectors.base.directory``); None where the platform has no owners
    agents: AgentDirectory | None = None

    def __init__(self, *, connector_id: str, client: ApiClient) -> None:
        self.connector_id = connector_id
        self.client = client
        #: commands whose attempt in this process failed without a clear answer, bounded
        self._uncertain: OrderedDict[str, None] = OrderedDict()

    async def execute(self, command: SyncCommand) -> SinkResult:
        """Write one command; raise RateLimitedError / RetriableAPIError / FatalAPIError.
        ``api_calls`` of the result is what this command cost, counted here for every
        platform (failed attempts are counted by the runner's metrics, not here)."""
        try:
            with counting() as count:  # this command's calls only, not its neighbours'
                result = replace(await self.write(command), api_calls=count.calls)
        except RateLimitedError:
            # The refused call wrote nothing, but an earlier call of this command may have
            # (a close before its tags): then the runner's retry, still attempt 1, must check.
            if count.writes:
                self._remember_uncertain(command)
            raise
        except RetriableAPIError:
            # A timeout or 5xx may come after the platform applied the write: the retry checks.
            self._remember_uncertain(command)
            raise
        self._uncertain.pop(command.command_id, None)
        logger.info(
            "%s sink executed command=%s action=%s/%s target=%s written=%s calls=%d",
            self.platform,
            command.command_id,
            command.target.entity_type.value,
            command.action.value,
            result.target_entity_id,
            result.written,
            result.api_calls,
        )
        return result

    def _remember_uncertain(self, command: SyncCommand) -> None:
        self._uncertain[command.command_id] = None
        while len(self._uncertain) > UNCERTAIN_REMEMBERED:
            self._uncertain.popitem(last=False)

    @abc.abstractmethod
    async def write(self, command: SyncCommand) -> SinkResult:
        """The platform's calls for one command; ``api_calls`` is filled in by ``execute``."""

    def may_have_run(self, command: SyncCommand) -> bool:
        """Whether an earlier attempt may have written this command already: the runner says
        so (``attempt`` ≥ 2), or an attempt in this process failed without a clear answer."""
        return command.attempt > 1 or command.command_id in self._uncertain

    @property
    def budget(self) -> RateBudget:
        """The credential's rate budget; the sink agent gives it this worker's share (the
        commands partitions it owns), so a cluster spends the account's limit once."""
        return self.client.budget

    async def aclose(self) -> None:
        """Release connections; the sink agent calls it on shutdown."""
        await self.client.aclose()


def command_data(command: SyncCommand, model: type[R]) -> R:
    """The command's data as ``model``; a command carrying anything else is a planner bug,
    refused before any call (a fatal error: it goes to the dead-letter topic)."""
    if not isinstance(command.data, model):
        got = type(command.data).__name__
        raise FatalAPIError(
            f"{command.target.entity_type.value}/{command.action.value} command "
            f"{command.command_id} needs data of type {model.__name__}, got {got}; a planner "
            "bug: the command cannot be executed and nothing was written"
        )
    return command.data
