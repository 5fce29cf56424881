"""The write side of a connector: one command in, one result out, or a typed error.

A sink executes one ``SyncCommand`` against its platform and returns a ``SinkResult``. It
makes every write idempotent on its own terms (Zendesk ``Idempotency-Key`` and ``external_id``
= link id, Intercom lookups before creates, Salesforce upsert by external id), and reports
the fingerprints of what it wrote so the sync stage can recognise the echo.

Errors are the caller's instructions: ``RateLimitedError`` (wait ``retry_after``, pause the
partition), ``RetriableAPIError`` (back off and retry), ``FatalAPIError`` (dead-letter the
command with the error). Retrying is not the sink's job: ``connectors.base.retry`` does it in
one place for every platform.
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
