"""Salesforce (Case, CaseComment, Contact) as the sync stage sees it
(``connectors.base.adapter``).

- A Case's standard Status picklist is New, Working, Escalated, Closed (canonical new, open,
  on_hold, closed; an org's own values map through the connector's settings); Priority is
  High, Medium, Low (canonical high, normal, low). Both are writable, and so is the owner
  (``OwnerId``: a User, or a queue for nobody); a Case has no tags.
- Change Data Capture names the changed fields of every change (``changedFields``), so a
  Case or Contact event is about exactly those fields.
- A ``CaseComment`` is published (``IsPublished``: visible to the customer) or internal.
- A Contact is upserted by an external id field holding our link id, so a profile write may
  create or find it.

Sources: Salesforce Object Reference, "Case" (Status, Priority picklists) and "CaseComment"
(IsPublished); Change Data Capture Developer Guide, "Change Event Header Fields"
(changedFields); REST API Developer Guide, "Insert or Update (Upsert) a Record Using an
External ID".
"""

from __future__ import annotations

from connectors.base.adapter import PlatformAdapter
from schemas.models import CaseStatus, Priority

__all__ = ["ADAPTER"]

ADAPTER = PlatformAdapter(
    platform="salesforce",
    name="Salesforce",
    case_noun="Case",
    writable_case_fields=frozenset({"status", "priority", "assignee"}),
    fields_reported_explicitly=frozenset({"status", "priority", "assignee"}),
    statuses=frozenset({CaseStatus.NEW, CaseStatus.OPEN, CaseStatus.ON_HOLD, CaseStatus.CLOSED}),
    priorities=frozenset({Priority.HIGH, Priority.NORMAL, Priority.LOW}),
    internal_messages=True,
    contact_events_name_fields=True,
    contacts_found_by_link_id=True,
)
