"""What the sync stage may know about a platform: the per-platform adapter.

The planner (``streams``) is written against this description and never against a platform's
name: which case fields a record can hold and be written, which of their changes the platform
reports with an event of their own, the visibilities its messages can have, how its contact
events describe a change, and how a contact that is not linked yet can be found there. Each
connector ships its adapter as ``connectors.<platform>.adapter:ADAPTER``;
``connectors.base.registry.adapter_for`` loads it.

Pure data: an adapter makes no call and holds no credential.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.models import CaseStatus, Priority

__all__ = ["FieldInventory", "InventoryField", "PlatformAdapter"]


@dataclass(frozen=True, slots=True)
class PlatformAdapter:
    platform: str
    #: the platform's name as people write it, for messages ("Zendesk")
    name: str
    #: how people call a case record there, for audit sentences ("ticket", "conversation")
    case_noun: str
    #: case fields the platform's API can set (``status``, ``priority``, ``tags``,
    #: ``assignee``: the owner)
    writable_case_fields: frozenset[str]
    #: case fields whose every change arrives as an event naming that field; for these a
    #: copy of the record that differs is an older view, not a change (the change's own event
    #: comes with the right time)
    fields_reported_explicitly: frozenset[str]
    #: the canonical statuses and priorities a record there can hold
    statuses: frozenset[CaseStatus]
    priorities: frozenset[Priority]
    #: can a message there be internal (an internal note, an unpublished comment)?
    internal_messages: bool
    #: contact events name the field that changed (otherwise every present attribute is
    #: listed, and an attribute that differs from what we knew is the change)
    contact_events_name_fields: bool
    #: a contact not linked yet can be found there by our link id (an external id), so a
    #: profile write may create or find it; otherwise only a linked contact is written
    contacts_found_by_link_id: bool
    #: the contact attribute holding the customer's plan, when the normaliser reads it from one
    plan_attribute: str | None = None

    def holds_status(self, status: CaseStatus) -> bool:
        return status in self.statuses

    def can_write(self, field: str) -> bool:
        return field in self.writable_case_fields


@dataclass(frozen=True, slots=True)
class InventoryField:
    """A custom case field as the platform lists it."""

    id: str
    title: str
    active: bool = True
    #: a drop-down's values; None for a free field
    options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FieldInventory:
    """What ``deskstream config check`` reads from a live account: its custom case fields
    and the contact attributes it knows."""

    case_fields: tuple[InventoryField, ...] = ()
    #: None when the platform has no list of contact attributes to check against
    contact_attributes: frozenset[str] | None = None
    #: False when the account could not be read (the check then says so once)
    read: bool = True
