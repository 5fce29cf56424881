"""Salesforce users for the owner ⇄ assignee flow (``connectors.base.directory``).

A Case's ``OwnerId`` is a User (key prefix ``005``) or a queue (``00G``: nobody owns the Case
yet). Users are read with SOQL ("User", Object Reference: ``Email``, ``IsActive``; SOQL
compares text case-insensitively): ``SELECT Id, Email, Name FROM User WHERE Email = '<email>'
AND IsActive = true`` for an email, ``... WHERE Id = '<id>'`` for an id. A deactivated user
owns nothing new; Deskstream's integration user (the connector's ``service_account_id``) is
not an agent: an owner is a person, never the integration. Several active users with one
email (an admin's test user, say) resolve to the oldest (``ORDER BY CreatedDate``) so every
worker picks the same one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from connectors.base.directory import Agent, AgentLookup
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.soql_text import string_literal

__all__ = ["USER_PREFIX", "SalesforceAgents"]

#: the key prefix of User ids ("ID Field Type", Object Reference)
USER_PREFIX = "005"
_SELECT = "SELECT Id, Email, Name FROM User WHERE IsActive = true AND "


class SalesforceAgents(AgentLookup):
    platform: ClassVar[str] = "salesforce"

    def __init__(self, client: SalesforceClient, *, integration_user: str | None) -> None:
        self.client = client
        self._integration = integration_user

    def _agents(self, rows: list[dict[str, Any]]) -> list[Agent]:
        return [
            Agent(id=str(row["Id"]), email=str(row["Email"]), name=row.get("Name") or None)
            for row in rows
            if row.get("Id") and row.get("Email") and row["Id"] != self._integration
        ]

    async def by_id(self, agent_id: str) -> list[Agent]:
        if not agent_id.startswith(USER_PREFIX):  # a queue, or not an id at all
            return []
        rows = await self.client.query_all(f"{_SELECT}Id = {string_literal(agent_id)}")
        return self._agents(rows)

    async def by_email(self, email: str) -> list[Agent]:
        rows = await self.client.query_all(
            f"{_SELECT}Email = {string_literal(email)} ORDER BY CreatedDate, Id LIMIT 1"
        )
        return self._agents(rows)
