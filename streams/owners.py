"""Case owners across platforms: one person, three ids, compared by email.

A ticket's ``assignee_id``, a conversation's ``admin_assignee_id`` and a Case's ``OwnerId`` are
ids of three unrelated spaces; what the accounts of one person share is the email. The owner
register (``assignee``, ``streams.flows.case_fields``) therefore holds an email, or ``""`` for
nobody, and the ids are translated at the edges, never here (this module makes no call):

- **in**: before the planner sees a case event, the sync agent fills ``assignee.email`` when
  the report names the owner by id only. ``owner_to_resolve`` says which id that is, after
  looking in the link's own memory (``LinkState.agents``: the owners this link has seen and
  written), so an owner reported again, and the echo of our own assignment, cost no call; the
  agent then asks that platform's agent directory (cached per worker) and hands the answer to
  ``with_owner_email``;
- **out**: a command carries the owner's email; the target's sink finds its own agent with
  that email (``connectors.base.directory.owner_write``) and answers the id it wrote, which
  ``remember_written_owner`` keeps for the echo.

Who can own: an agent (a person). An AI agent, the integration's own account, the platform
itself or a queue owning a record means nobody owns it (``""``): they never become owners
elsewhere. An agent whose email could not be read is *unresolved* (None): that report says
nothing about the owner.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base.commands import CREATED_OWNER
from connectors.base.links import normalise_email
from schemas.models import Actor, ActorKind, Case, Envelope, WriteResult
from streams.config import SyncConfig
from streams.mapping import syncs_assignee
from streams.state import LinkState

__all__ = [
    "NOBODY",
    "OWNER",
    "owner_to_resolve",
    "owner_value",
    "remember_seen_owner",
    "remember_written_owner",
    "with_owner_email",
]

#: the owner register's name (a case field)
OWNER = "assignee"
#: the owner register's value for "nobody owns the record"
NOBODY = ""


def owner_value(assignee: Actor | None) -> str | None:
    """The owner register's value for a record's ``assignee``: the agent's email (lower
    case), ``NOBODY``, or None when the agent is known by id only (unresolved)."""
    if assignee is None or assignee.kind is not ActorKind.AGENT:
        return NOBODY
    if assignee.email:
        return normalise_email(assignee.email)
    return None if assignee.id else NOBODY


def _case_owner(event: Envelope) -> Actor | None:
    data = event.data
    return data.assignee if isinstance(data, Case) else None


def owner_to_resolve(
    config: SyncConfig, agents: Mapping[str, str], event: Envelope
) -> tuple[Envelope, str | None]:
    """``event`` with its owner's email filled from the link's memory (``agents``: the
    link's ``LinkState.agents``) when known, and the agent id whose email must still be
    read from the platform (None: nothing to read)."""
    owner = _case_owner(event)
    side = event.source.platform.value
    synced = config.connectors.get(side) == event.source.connector_id
    if owner is None or owner_value(owner) is not None or not synced:
        return event, None
    if not syncs_assignee(config, side):
        return event, None
    assert owner.id is not None  # unresolved means: an agent with an id and no email
    known = agents.get(f"{side}:{owner.id}")
    if known is not None:
        return with_owner_email(event, known), None
    return event, owner.id


def with_owner_email(event: Envelope, email: str | None) -> Envelope:
    """``event`` whose case owner carries ``email`` (None: left unresolved)."""
    owner = _case_owner(event)
    if owner is None or email is None:
        return event
    case = event.data
    assert isinstance(case, Case)
    data = case.model_copy(update={"assignee": owner.model_copy(update={"email": email})})
    return event.model_copy(update={"data": data})


def remember_seen_owner(state: LinkState, side: str, assignee: Actor | None) -> None:
    """A report named its owner by id and email: the link remembers the pair."""
    value = owner_value(assignee)
    if assignee is not None and assignee.id and value:
        state.remember_agent(side, assignee.id, value)


def remember_written_owner(state: LinkState, result: WriteResult) -> None:
    """Our write set an owner (its answer names the target's agent id): the link remembers
    which email that id stands for, so the write's echo is known without a call. Called
    before the registers settle the write (the email is the value of its flight)."""
    agent_id = result.created_ids.get(CREATED_OWNER)
    register = state.registers.get(OWNER)
    if not agent_id or register is None:
        return
    side = result.target.platform.value
    for value, command_id, *_ in register.get("pending", {}).get(side, []):
        if command_id == result.command_id and value:
            state.remember_agent(side, agent_id, str(value))
