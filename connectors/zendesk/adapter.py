"""Zendesk Support as the sync stage sees it (``connectors.base.adapter``).

- A ticket's status is new, open, pending, hold (canonical ``on_hold``), solved or closed;
  its priority low, normal, high or urgent; status, priority, tags and the owner
  (``assignee_id``, an agent) can all be written.
- Ticket events name their field (``zen:event-type:ticket.status_changed``,
  ``…priority_changed``, ``…tags_changed``, ``…agent_assignment_changed``): a copy of the
  ticket that differs is an older view, not a change.
- A comment is public or an internal note.
- User events name their field; a user can be found by ``external_id`` (our link id), so a
  profile write may create or find the user.
"""

from __future__ import annotations

from connectors.base.adapter import PlatformAdapter
from schemas.models import CaseStatus, Priority

__all__ = ["ADAPTER"]

ADAPTER = PlatformAdapter(
    platform="zendesk",
    name="Zendesk",
    case_noun="ticket",
    writable_case_fields=frozenset({"status", "priority", "tags", "assignee"}),
    fields_reported_explicitly=frozenset({"status", "priority", "tags", "assignee"}),
    statuses=frozenset(CaseStatus),
    priorities=frozenset(Priority),
    internal_messages=True,
    contact_events_name_fields=True,
    contacts_found_by_link_id=True,
)
