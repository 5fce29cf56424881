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
  anything is written): the runner's retries re-run the command unchanged, at the same
  ``attempt``.
- Every write that is not idempotent by itself checks before writing when either holds
  ("attempt > 1 or uncertain ⇒ read before retry"): an idempotency key where the platform
  has one (Zendesk ticket create), otherwise a lookup of what an earlier attempt left (a
  comment or reply by its body, a contact by email or external id, a ticket by external id).
  Idempotent writes (set a status, add a tag, an upsert by key) need no check.
- What the check cannot see is each sink's stated residual window (its module docstring):
  a duplicate only when the earlier copy has left the lookback, a lost message only when a
  different message with the very same body lies within it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from connectors.base.ratelimit import RateBudget
from schemas.models import SyncCommand

__all__ = ["Sink", "SinkResult"]


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


class Sink(abc.ABC):
    platform: ClassVar[str]

    @abc.abstractmethod
    async def execute(self, command: SyncCommand) -> SinkResult:
        """Write one command; raise RateLimitedError / RetriableAPIError / FatalAPIError."""

    @property
    @abc.abstractmethod
    def budget(self) -> RateBudget:
        """The credential's rate budget; the sink agent gives it this worker's share (the
        commands partitions it owns), so a cluster spends the account's limit once."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections; the sink agent calls it on shutdown."""
