"""The sandbox's records and how each renders as Intercom 2.14 JSON.

Records hold what Intercom stores; ``to_api`` builds the response objects of the official spec
(``contact``, ``conversation``, ``conversation_part``, ``admin``, ``tag``, ``data_attribute``).
Timestamps are Unix seconds, ids are strings, as in the real API.
"""

from __future__ import annotations

import mimetypes
import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Admin",
    "Contact",
    "Conversation",
    "DataAttribute",
    "Part",
    "Tag",
    "attachment_from_url",
]

JSON = dict[str, Any]


@dataclass
class Admin:
    id: str
    name: str
    email: str
    job_title: str = "Support"
    team_ids: list[int] = field(default_factory=list)

    def to_api(self) -> JSON:
        return {
            "type": "admin",
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "job_title": self.job_title,
            "away_mode_enabled": False,
            "away_mode_reassign": False,
            "away_status_reason_id": None,
            "has_inbox_seat": True,
            "team_ids": list(self.team_ids),
            "avatar": None,
        }

    def author(self) -> JSON:
        return {"type": "admin", "id": self.id, "name": self.name, "email": self.email}


@dataclass
class Tag:
    id: str
    name: str

    def basic(self) -> JSON:
        return {"type": "tag", "id": self.id, "name": self.name}


@dataclass
class DataAttribute:
    name: str
    model: str
    data_type: str
    custom: bool
    label: str = ""
    description: str = ""
    id: int | None = None
    created_at: int = 0
    updated_at: int = 0
    admin_id: str | None = None
    options: list[str] = field(default_factory=list)

    def to_api(self) -> JSON:
        data: JSON = {
            "type": "data_attribute",
            "name": self.name,
            "full_name": f"custom_attributes.{self.name}" if self.custom else self.name,
            "label": self.label or self.name.replace("_", " ").title(),
            "description": self.description,
            "data_type": self.data_type,
            "api_writable": True,
            "ui_writable": True,
            "messenger_writable": False,
            "custom": self.custom,
            "archived": False,
            "model": self.model,
        }
        if self.options:
            data["options"] = list(self.options)
        if self.custom:
            data.update(id=self.id, created_at=self.created_at, updated_at=self.updated_at)
            if self.admin_id is not None:
                data["admin_id"] = self.admin_id
        return data


@dataclass
class Contact:
    id: str
    workspace_id: str
    role: str
    created_at: int
    updated_at: int
    email: str | None = None
    external_id: str | None = None
    phone: str | None = None
    name: str | None = None
    avatar: str | None = None
    owner_id: int | None = None
    signed_up_at: int | None = None
    last_seen_at: int | None = None
    last_replied_at: int | None = None
    last_contacted_at: int | None = None
    unsubscribed_from_emails: bool = False
    custom_attributes: JSON = field(default_factory=dict)
    tag_ids: list[str] = field(default_factory=list)
    seq: int = 0  # creation order, the tie-break of search ordering

    def reference(self) -> JSON:
        return {"type": "contact", "id": self.id, "external_id": self.external_id}

    def author(self) -> JSON:
        # Contacts author parts as "user" or "lead", the role they have.
        return {"type": self.role, "id": self.id, "name": self.name, "email": self.email or ""}

    def search_value(self, path: str) -> Any:
        """The value a search filter on ``path`` compares against."""
        if path.startswith("custom_attributes."):
            return self.custom_attributes.get(path.partition(".")[2])
        if path == "email_domain":
            return (self.email or "").rpartition("@")[2] or None
        if path == "tag_id":
            return list(self.tag_ids)
        return getattr(self, path, None)

    def to_api(self, tags: dict[str, Tag]) -> JSON:
        email = self.email or ""
        none_fields = [
            "last_email_opened_at",
            "last_email_clicked_at",
            "language_override",
            "browser",
            "browser_version",
            "browser_language",
            "os",
            "android_app_name",
            "android_app_version",
            "android_device",
            "android_os_version",
            "android_sdk_version",
            "android_last_seen_at",
            "ios_app_name",
            "ios_app_version",
            "ios_device",
            "ios_os_version",
            "ios_sdk_version",
            "ios_last_seen_at",
        ]
        tag_refs = [
            {"type": "tag", "id": tag_id, "url": f"/tags/{tag_id}"}
            for tag_id in self.tag_ids
            if tag_id in tags
        ]
        data: JSON = {
            "type": "contact",
            "id": self.id,
            "workspace_id": self.workspace_id,
            "external_id": self.external_id,
            "role": self.role,
            "email": email,
            "email_domain": email.rpartition("@")[2] if "@" in email else "",
            "phone": self.phone,
            "name": self.name,
            "owner_id": self.owner_id,
            "has_hard_bounced": False,
            "marked_email_as_spam": False,
            "unsubscribed_from_emails": self.unsubscribed_from_emails,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "signed_up_at": self.signed_up_at,
            "last_seen_at": self.last_seen_at,
            "last_replied_at": self.last_replied_at,
            "last_contacted_at": self.last_contacted_at,
        }
        data.update(dict.fromkeys(none_fields))
        data.update(
            custom_attributes=dict(self.custom_attributes),
            avatar={"type": "avatar", "image_url": self.avatar},
            tags={
                "type": "list",
                "data": tag_refs,
                "url": f"/contacts/{self.id}/tags",
                "total_count": len(tag_refs),
                "has_more": False,
            },
            notes={
                "type": "list",
                "data": [],
                "url": f"/contacts/{self.id}/notes",
                "total_count": 0,
                "has_more": False,
            },
            companies={
                "type": "list",
                "data": [],
                "url": f"/contacts/{self.id}/companies",
                "total_count": 0,
                "has_more": False,
            },
            location={"type": "location", "country": None, "region": None, "city": None},
            social_profiles={"type": "list", "data": []},
        )
        return data


def attachment_from_url(url: str) -> JSON:
    """A ``part_attachment`` for an ``attachment_urls`` entry.

    The real API downloads and re-hosts the file; the sandbox is offline, so it keeps the URL
    and reports size 0 rather than inventing one.
    """
    name = posixpath.basename(urlsplit(url).path) or "attachment"
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {
        "type": "upload",
        "name": name,
        "url": url,
        "content_type": content_type,
        "filesize": 0,
    }


@dataclass
class Part:
    id: str
    part_type: str
    created_at: int
    author: JSON
    state: str
    body: str | None = None
    attachments: list[JSON] = field(default_factory=list)
    assigned_to: JSON | None = None
    tags: list[JSON] = field(default_factory=list)

    def to_api(self) -> JSON:
        data: JSON = {
            "type": "conversation_part",
            "id": self.id,
            "part_type": self.part_type,
            "body": self.body,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "notified_at": self.created_at,
            "author": dict(self.author),
            "attachments": [dict(a) for a in self.attachments],
            "external_id": None,
            "redacted": False,
            "state": self.state,
            "tags": [dict(t) for t in self.tags],
            "app_package_code": None,
        }
        # The live API sends null for assigned_to, email_message_metadata and event_details
        # when unset, but the 2.14 spec declares them as plain $refs (its `nullable` sits
        # beside the $ref and is ignored), so unset ones are left out to stay spec-valid.
        if self.assigned_to is not None:
            data["assigned_to"] = dict(self.assigned_to)
        return data


@dataclass
class AppliedTag:
    tag_id: str
    applied_at: int
    applied_by: JSON


@dataclass
class Conversation:
    id: str
    created_at: int
    updated_at: int
    contact_ids: list[str]
    source: JSON
    state: str = "open"
    read: bool = False
    priority: str = "not_priority"
    waiting_since: int | None = None
    snoozed_until: int | None = None
    admin_assignee_id: int | None = None
    team_assignee_id: int | None = None
    title: str | None = None
    custom_attributes: JSON = field(default_factory=dict)
    tags: list[AppliedTag] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    teammate_ids: list[str] = field(default_factory=list)
    statistics: JSON = field(default_factory=dict)
    seq: int = 0  # creation order, the tie-break of search ordering

    @property
    def open(self) -> bool:
        # Snoozed conversations are still open in Intercom's model.
        return self.state != "closed"

    def search_value(self, path: str) -> Any:
        """The value a search filter on ``path`` compares against."""
        if path.startswith("custom_attributes."):
            return self.custom_attributes.get(path.partition(".")[2])
        if path.startswith("source."):
            value: Any = self.source
            for key in path.split(".")[1:]:
                value = value.get(key) if isinstance(value, dict) else None
            return value
        if path.startswith("statistics."):
            return self.statistics.get(path.partition(".")[2])
        if path == "contact_ids":
            return list(self.contact_ids)
        if path == "teammate_ids":
            return list(self.teammate_ids)
        if path == "tag_ids":
            return [t.tag_id for t in self.tags]
        if path == "open":
            return self.open
        return getattr(self, path, None)

    def to_api(
        self,
        *,
        contacts: dict[str, Contact],
        tags: dict[str, Tag],
        parts: list[Part] | None,
    ) -> JSON:
        """The ``conversation`` object; ``parts=None`` renders a list item (no parts)."""
        data: JSON = {
            "type": "conversation",
            "id": self.id,
            "title": self.title,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "waiting_since": self.waiting_since,
            "snoozed_until": self.snoozed_until,
            "source": dict(self.source),
            "contacts": {
                "type": "contact.list",
                "contacts": [contacts[c].reference() for c in self.contact_ids if c in contacts],
            },
            # None until the contact has written (admin-initiated conversations start so).
            "first_contact_reply": (
                {"created_at": first_reply, "type": "conversation"}
                if (first_reply := self.statistics.get("first_contact_reply_at")) is not None
                else None
            ),
            "admin_assignee_id": self.admin_assignee_id,
            "team_assignee_id": self.team_assignee_id,
            "open": self.open,
            "state": self.state,
            "read": self.read,
            "tags": {
                "type": "tag.list",
                "tags": [
                    tags[t.tag_id].basic()
                    | {"applied_at": t.applied_at, "applied_by": dict(t.applied_by)}
                    for t in self.tags
                    if t.tag_id in tags
                ],
            },
            "priority": self.priority,
            "sla_applied": None,
            "statistics": {"type": "conversation_statistics"} | self.statistics,
            "conversation_rating": None,
            "teammates": {
                "type": "admin.list",
                "teammates": [{"type": "admin", "id": i} for i in self.teammate_ids],
            },
            "custom_attributes": dict(self.custom_attributes),
            "topics": {},
            "ticket": None,
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            # ai_agent is left out (not null) for the same $ref/nullable reason as in parts.
            "ai_agent_participated": False,
        }
        if parts is not None:
            data["conversation_parts"] = {
                "type": "conversation_part.list",
                # The API returns at most the 500 most recent parts.
                "conversation_parts": [p.to_api() for p in parts[-500:]],
                "total_count": len(parts),
            }
        return data
