"""The workspace's state: contacts, admins, tags and data attributes (conversations live in
``conversations.py`` and share this store).

Every mutating operation returns the webhook :class:`Event` objects it causes, rendered at the
moment of the change, so the platform layer only has to sign and queue them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sandboxes.base.clock import Clock
from sandboxes.intercom.config import IntercomSandboxConfig
from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.models import (
    JSON,
    Admin,
    Contact,
    Conversation,
    DataAttribute,
    Tag,
)

__all__ = ["Event", "IntercomState", "optional_int", "optional_str"]

_STANDARD_ATTRIBUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "contact": (
        ("name", "string"),
        ("email", "string"),
        ("phone", "string"),
        ("external_id", "string"),
        ("role", "string"),
        ("owner_id", "integer"),
        ("created_at", "date"),
        ("updated_at", "date"),
        ("signed_up_at", "date"),
        ("last_seen_at", "date"),
        ("unsubscribed_from_emails", "boolean"),
    ),
    "company": (("name", "string"), ("company_id", "string"), ("created_at", "date")),
    "conversation": (("title", "string"), ("priority", "string")),
}
_CUSTOM_TYPES = {"string", "integer", "float", "boolean", "date", "datetime", "options"}


@dataclass(frozen=True)
class Event:
    """One webhook notification to send: its topic and the ``data.item`` it carries."""

    topic: str
    item: JSON


def optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise IntercomAPIError.invalid(f"{key} must be a string", field=key)


def optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise IntercomAPIError.invalid(f"{key} must be an integer", field=key)


def _type_ok(data_type: str, value: Any) -> bool:
    if value is None:
        return True
    if data_type in {"string", "options"}:
        return isinstance(value, str)
    if data_type in {"integer", "date", "datetime"}:
        return isinstance(value, int) and not isinstance(value, bool)
    if data_type == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if data_type == "boolean":
        return isinstance(value, bool)
    return False


class IntercomState:
    """All records of one workspace plus deterministic id generators."""

    def __init__(self, config: IntercomSandboxConfig, clock: Clock, rng: random.Random) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng
        self.timezone = ZoneInfo(config.timezone)
        self.reset()

    def reset(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self.conversations: dict[str, Conversation] = {}
        self.tags: dict[str, Tag] = {}
        self.admins: dict[str, Admin] = {
            a.id: Admin(a.id, a.name, a.email, a.job_title, list(self.config.team_ids))
            for a in self.config.admins
        }
        self.attributes: dict[tuple[str, str], DataAttribute] = {}
        for model, names in _STANDARD_ATTRIBUTES.items():
            for name, data_type in names:
                self.attributes[(model, name)] = DataAttribute(name, model, data_type, False)
        self._counters = {"conversation": 100000, "part": 1000000, "message": 400000000}
        self._counters |= {"tag": 100, "attribute": 1000, "sequence": 0}
        for model, custom in self.config.custom_attributes.items():
            for name, data_type in custom.items():
                self._add_attribute(model, name, data_type)
        self._by_email: dict[str, str] = {}
        self._by_external_id: dict[str, str] = {}

    # -- ids and time ----------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def next_id(self, kind: str) -> str:
        self._counters[kind] += 1
        return str(self._counters[kind])

    def _contact_id(self) -> str:
        return format(self.rng.getrandbits(96), "024x")

    # -- admins, tags, data attributes -----------------------------------------------------

    def token_admin(self) -> Admin:
        """The admin the app's access tokens act as (``GET /me``): the first one seeded."""
        return next(iter(self.admins.values()))

    def admin(self, admin_id: Any, *, field: str = "admin_id") -> Admin:
        if admin_id is None or admin_id == "":
            raise IntercomAPIError.missing(field)
        admin = self.admins.get(str(admin_id))
        if admin is None:
            raise IntercomAPIError(404, "admin_not_found", "Admin not found", field=field)
        return admin

    def tag(self, tag_id: Any) -> Tag:
        tag = self.tags.get(str(tag_id))
        if tag is None:
            raise IntercomAPIError(404, "tag_not_found", "Tag not found")
        return tag

    def create_or_update_tag(self, body: dict[str, Any]) -> Tag:
        name = optional_str(body, "name")
        if not name:
            raise IntercomAPIError.missing("name")
        if body.get("id") is not None:
            tag = self.tag(body["id"])
            tag.name = name
            return tag
        for tag in self.tags.values():
            if tag.name == name:
                return tag
        tag = Tag(self.next_id("tag"), name)
        self.tags[tag.id] = tag
        return tag

    def _add_attribute(self, model: str, name: str, data_type: str) -> DataAttribute:
        if data_type not in _CUSTOM_TYPES:
            raise IntercomAPIError.invalid(f"{data_type} is not a valid data_type")
        now = self.now()
        attribute = DataAttribute(
            name,
            model,
            data_type,
            True,
            id=int(self.next_id("attribute")),
            created_at=now,
            updated_at=now,
        )
        self.attributes[(model, name)] = attribute
        return attribute

    def create_data_attribute(self, body: dict[str, Any]) -> DataAttribute:
        name, model = optional_str(body, "name"), optional_str(body, "model")
        data_type = optional_str(body, "data_type")
        if not name:
            raise IntercomAPIError.missing("name")
        if model not in {"contact", "company"}:
            raise IntercomAPIError.invalid("model must be contact or company", field="model")
        if not data_type:
            raise IntercomAPIError.missing("data_type")
        if (model, name) in self.attributes:
            raise IntercomAPIError.invalid(
                "You already have 'name' in your person or company data. To save this as new "
                "people data, use a different name.",
                field="name",
            )
        attribute = self._add_attribute(model, name, data_type)
        attribute.description = optional_str(body, "description") or ""
        options = body.get("options") or []
        attribute.options = [str(o.get("value")) for o in options if isinstance(o, dict)]
        return attribute

    def data_attributes(self, model: str | None) -> list[DataAttribute]:
        return [a for (m, _), a in self.attributes.items() if model is None or m == model]

    def check_custom_attributes(self, model: str, values: Any) -> dict[str, Any]:
        """Validate custom attributes against the workspace's data attributes."""
        if values is None:
            return {}
        if not isinstance(values, dict):
            raise IntercomAPIError.invalid("custom_attributes must be an object")
        for name, value in values.items():
            attribute = self.attributes.get((model, name))
            if attribute is None or not attribute.custom:
                # Intercom refuses attributes that were never created (UNVERIFIED wording).
                raise IntercomAPIError.invalid(
                    f"Custom attribute '{name}' does not exist", field=name
                )
            if not _type_ok(attribute.data_type, value):
                raise IntercomAPIError.invalid(
                    f"Custom attribute '{name}' must be of type {attribute.data_type}",
                    field=name,
                )
        return dict(values)

    # -- contacts ----------------------------------------------------------------------------

    def contact(self, contact_id: str) -> Contact:
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise IntercomAPIError.not_found("User Not Found")
        return contact

    def contact_by_external_id(self, external_id: str) -> Contact:
        contact_id = self._by_external_id.get(external_id)
        if contact_id is None:
            raise IntercomAPIError.not_found("User Not Found")
        return self.contacts[contact_id]

    def contact_by_user_id(self, user_id: str) -> Contact | None:
        """The contact whose ``external_id`` (the API's ``user_id``) is ``user_id``."""
        contact_id = self._by_external_id.get(user_id)
        return self.contacts.get(contact_id) if contact_id else None

    def contact_by_email(self, email: str) -> Contact | None:
        contact_id = self._by_email.get(email.casefold())
        return self.contacts.get(contact_id) if contact_id else None

    def render_contact(self, contact: Contact) -> JSON:
        return contact.to_api(self.tags)

    def _check_unique(self, contact: Contact, email: str | None, external_id: str | None) -> None:
        for index, key in ((self._by_email, email), (self._by_external_id, external_id)):
            if key is None:
                continue
            owner = index.get(key.casefold() if index is self._by_email else key)
            if owner is not None and owner != contact.id and contact.role == "user":
                raise IntercomAPIError(
                    409,
                    "conflict",
                    f"A contact matching those details already exists with id={owner}",
                )

    def _reindex(self, contact: Contact, old_email: str | None, old_external: str | None) -> None:
        if old_email and self._by_email.get(old_email.casefold()) == contact.id:
            del self._by_email[old_email.casefold()]
        if old_external and self._by_external_id.get(old_external) == contact.id:
            del self._by_external_id[old_external]
        if contact.email:
            self._by_email.setdefault(contact.email.casefold(), contact.id)
        if contact.external_id:
            self._by_external_id.setdefault(contact.external_id, contact.id)

    def _apply_contact_fields(self, contact: Contact, body: dict[str, Any]) -> bool:
        """Write the writable fields present in ``body``; True when anything changed."""
        # Unknown keys are ignored, not refused, so clients sending newer fields keep working.
        values: dict[str, Any] = {}
        for key in ("role", "email", "external_id", "phone", "name", "avatar"):
            if key in body:
                values[key] = optional_str(body, key)
        for key in ("owner_id", "signed_up_at", "last_seen_at"):
            if key in body:
                values[key] = optional_int(body, key)
        if "unsubscribed_from_emails" in body:
            values["unsubscribed_from_emails"] = bool(body["unsubscribed_from_emails"])
        if values.get("role") not in (None, "user", "lead"):
            raise IntercomAPIError.invalid("role must be user or lead", field="role")
        if "role" in values and values["role"] is None:
            del values["role"]
        custom = self.check_custom_attributes("contact", body.get("custom_attributes"))
        self._check_unique(
            Contact(contact.id, "", values.get("role", contact.role), 0, 0),
            values.get("email"),
            values.get("external_id"),
        )
        changed = False
        old_email, old_external = contact.email, contact.external_id
        for key, value in values.items():
            if getattr(contact, key) != value:
                setattr(contact, key, value)
                changed = True
        for key, value in custom.items():
            if contact.custom_attributes.get(key) != value:
                contact.custom_attributes[key] = value
                changed = True
        self._reindex(contact, old_email, old_external)
        return changed

    def create_contact(self, body: dict[str, Any]) -> tuple[Contact, list[Event]]:
        if not any(body.get(k) for k in ("email", "external_id", "role")):
            raise IntercomAPIError.invalid(
                "You must provide at least one of email, external_id or role"
            )
        now = self.now()
        contact = Contact(self._contact_id(), self.config.app_id, "user", now, now)
        contact.seq = int(self.next_id("sequence"))
        self._apply_contact_fields(contact, body)
        self.contacts[contact.id] = contact
        self._reindex(contact, None, None)
        return contact, [Event(f"contact.{contact.role}.created", self.render_contact(contact))]

    def update_contact(self, contact_id: str, body: dict[str, Any]) -> tuple[Contact, list[Event]]:
        contact = self.contact(contact_id)
        if contact.role == "user" and body.get("role") == "lead":
            raise IntercomAPIError.invalid("A user cannot be converted to a lead", field="role")
        if not self._apply_contact_fields(contact, body):
            return contact, []
        contact.updated_at = self.now()
        return contact, [Event(f"contact.{contact.role}.updated", self.render_contact(contact))]

    def delete_contact(self, contact_id: str) -> tuple[JSON, list[Event]]:
        contact = self.contact(contact_id)
        del self.contacts[contact_id]
        self._reindex(contact, contact.email, contact.external_id)
        reference = contact.reference()
        return reference | {"deleted": True}, [Event("contact.deleted", dict(reference))]

    def _contact_tag(self, contact: Contact, tag: Tag, change: str) -> Event:
        """``contact.<role>.tag.created|deleted`` with the Contact Tag object, "composed from
        the existing contact and tag" and "sent when contacts are tagged and untagged"
        ("Webhook models", https://developers.intercom.com/docs/references/2.16/webhooks/webhook-models)."""
        item = {
            "type": "contact_tag",
            "created_at": self.now(),
            "contact": self.render_contact(contact),
            "tag": tag.basic(),
        }
        return Event(f"contact.{contact.role}.tag.{change}", item)

    def tag_contact(self, contact_id: str, body: dict[str, Any]) -> tuple[Tag, list[Event]]:
        contact = self.contact(contact_id)
        tag = self.tag(body.get("id"))
        if tag.id in contact.tag_ids:
            return tag, []
        contact.tag_ids.append(tag.id)
        return tag, [self._contact_tag(contact, tag, "created")]

    def untag_contact(self, contact_id: str, tag_id: str) -> tuple[Tag, list[Event]]:
        contact = self.contact(contact_id)
        tag = self.tag(tag_id)
        if tag.id not in contact.tag_ids:
            return tag, []
        contact.tag_ids.remove(tag.id)
        return tag, [self._contact_tag(contact, tag, "deleted")]
