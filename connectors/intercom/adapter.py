"""Intercom as the sync stage sees it (``connectors.base.adapter``).

- A conversation is open, snoozed (canonical ``pending``) or closed; its priority is
  ``priority`` or ``not_priority`` (canonical ``high`` / ``normal``). API 2.14 cannot set a
  priority (Update a conversation takes no priority), so status, tags and the owner (an
  ``assignment`` part naming an admin) are written.
- Status, priority and assignment changes have topics of their own
  (``conversation.admin.closed``, ``…opened``, ``…snoozed``, ``…unsnoozed``,
  ``conversation.priority.updated``, ``conversation.admin.assigned``); a tag removal sends
  nothing, so only copies of the conversation show it.
- Admin notes are internal parts of a conversation.
- Contact notifications list every present attribute, not the one that changed; a contact
  carries no external id we could set for a link, so only a linked contact is written.
- The normaliser reads the customer's plan from the ``plan`` custom attribute.
"""

from __future__ import annotations

from connectors.base.adapter import PlatformAdapter
from schemas.models import CaseStatus, Priority

__all__ = ["ADAPTER"]

ADAPTER = PlatformAdapter(
    platform="intercom",
    name="Intercom",
    case_noun="conversation",
    writable_case_fields=frozenset({"status", "tags", "assignee"}),
    fields_reported_explicitly=frozenset({"status", "priority", "assignee"}),
    statuses=frozenset({CaseStatus.OPEN, CaseStatus.PENDING, CaseStatus.CLOSED}),
    priorities=frozenset({Priority.HIGH, Priority.NORMAL}),
    internal_messages=True,
    contact_events_name_fields=False,
    contacts_found_by_link_id=False,
    plan_attribute="plan",
)
