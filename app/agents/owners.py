"""The owner's email for the sync stage: a case report that names its owner by id only (every
platform does: ``assignee_id``, ``admin_assignee_id``, ``OwnerId``) gets the email before the
planner sees it, because owners are compared by email across platforms (``streams.owners``).

The link's own memory answers first (``streams.owners.owner_to_resolve``: owners this link
has seen or written, so a copy of the record and the echo of our own assignment cost nothing);
otherwise the platform's agent directory, the very one its sink on this worker uses
(``connectors.base.directory``, cached with a TTL). A lookup that fails or takes longer than
``LOOKUP_TIMEOUT_S`` leaves the owner unresolved: the planner then ignores the owner in that
report and sends a person's assignment round again shortly (``Plan.retry_in``), so a slow
platform delays one owner, never the link's partition for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from connectors.base.directory import AgentDirectory
from schemas.errors import DeskstreamError
from schemas.models import Envelope
from streams.config import SyncConfig
from streams.owners import owner_to_resolve, with_owner_email

__all__ = ["LOOKUP_TIMEOUT_S", "OwnerEmails"]

log = logging.getLogger(__name__)

#: the longest a report waits for its owner's email
LOOKUP_TIMEOUT_S = 10.0

#: (platform, connector id) → that connector's agent directory, if it has one
DirectoryFor = Callable[[str, str], AgentDirectory | None]


class OwnerEmails:
    def __init__(
        self, config: SyncConfig, directory_for: DirectoryFor, *, timeout: float = LOOKUP_TIMEOUT_S
    ) -> None:
        self._config = config
        self._directory_for = directory_for
        self._timeout = timeout

    async def fill(self, event: Envelope, agents: Mapping[str, str]) -> Envelope:
        """``event`` with its owner's email, when it names one by id and it can be found
        (``agents``: the link's memory of its owners, ``LinkState.agents``)."""
        event, agent_id = owner_to_resolve(self._config, agents, event)
        if agent_id is None:
            return event
        source = event.source
        email: str | None = None
        try:
            directory = self._directory_for(source.platform.value, source.connector_id)
            if directory is not None:
                email = await asyncio.wait_for(directory.email_of(agent_id), self._timeout)
        except (DeskstreamError, TimeoutError) as exc:
            log.warning(
                "owner lookup failed platform=%s connector=%s error=%s; the owner of this "
                "report is not synced, a person's assignment is decided again shortly",
                source.platform.value,
                source.connector_id,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
            )
        return with_owner_email(event, email)
