"""Zendesk's agents for the owner ⇄ assignee flow (``connectors.base.directory``).

A ticket's ``assignee_id`` is a user with the ``agent`` or ``admin`` role ("Users", Zendesk
Support API: ``role`` is end-user, agent or admin; only staff can be assigned). An id is read
with ``GET /api/v2/users/{id}``, an email with ``GET /api/v2/users/search?query=email:<email>``
(the search matches every email identity of a user, so a secondary email finds its agent
too). End users, suspended or deleted users
and users without an email are not agents here. One call per question: Zendesk has no cheap
list of all agents (a paged ``GET /api/v2/users?role[]=agent&role[]=admin`` would cost a
call per hundred agents for every cold cache).
"""

from __future__ import annotations

from typing import ClassVar

from connectors.base.directory import Agent, AgentLookup
from connectors.zendesk.client import ZendeskClient
from connectors.zendesk.models import User

__all__ = ["STAFF_ROLES", "ZendeskAgents"]

STAFF_ROLES = frozenset({"agent", "admin"})


def _agent(user: User | None) -> list[Agent]:
    if user is None or not user.active or user.role not in STAFF_ROLES or not user.email:
        return []
    return [Agent(id=user.id, email=user.email, name=user.name)]


class ZendeskAgents(AgentLookup):
    platform: ClassVar[str] = "zendesk"

    def __init__(self, client: ZendeskClient) -> None:
        self.client = client

    async def by_id(self, agent_id: str) -> list[Agent]:
        if not agent_id.isdigit():  # Zendesk user ids are numbers; anything else is no user
            return []
        return _agent(await self.client.user(agent_id))

    async def by_email(self, email: str) -> list[Agent]:
        agents: list[Agent] = []
        for user in await self.client.search_users_by_email(email):
            for agent in _agent(user):
                if agent.email.lower() != email:
                    # Found by a secondary identity: that email names them too. The primary
                    # comes last, so the id is answered with the primary email.
                    agents.append(Agent(id=agent.id, email=email, name=agent.name))
                agents.append(agent)
        return agents
