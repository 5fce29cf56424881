"""Intercom's admins (teammates) for the owner ⇄ assignee flow (``connectors.base.directory``).

A conversation's ``admin_assignee_id`` is an admin. ``GET /admins`` ("List all admins",
``admin_list``) answers every admin of the workspace with ``id`` and ``email`` in one call and
no paging, so both questions are answered from the list: one call teaches the directory the
whole workspace, and every other admin is then answered from the cache. Intercom has no admin
search by email (``GET /admins/{id}`` reads one admin by id only).

Deskstream's own bot admin (the connector's ``service_account_id``) is not an agent here: an
owner is a person, never the integration.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.base.directory import Agent, AgentLookup
from connectors.intercom.client import IntercomClient

__all__ = ["IntercomAgents"]


class IntercomAgents(AgentLookup):
    platform: ClassVar[str] = "intercom"

    def __init__(self, client: IntercomClient, *, bot_admin_id: str | None) -> None:
        self.client = client
        self._bot = bot_admin_id

    async def _all(self) -> list[Agent]:
        return [
            Agent(id=admin.id, email=admin.email, name=admin.name)
            for admin in await self.client.admins()
            if admin.email and admin.id != self._bot
        ]

    async def by_id(self, agent_id: str) -> list[Agent]:
        return await self._all()

    async def by_email(self, email: str) -> list[Agent]:
        return await self._all()
