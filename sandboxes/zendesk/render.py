"""The API's JSON for each record, shaped like Zendesk's responses.

``origin`` is the scheme and host the client called (``http://127.0.0.1:8100``), so every
``url``, ``content_url`` and pagination link points back at the sandbox that served it.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from sandboxes.zendesk.config import CustomFieldSpec, ZendeskSandboxConfig
from sandboxes.zendesk.state import (
    Attachment,
    Audit,
    Comment,
    Identity,
    JobStatus,
    Ticket,
    User,
    ZendeskState,
)

__all__ = [
    "attachment_json",
    "audit_json",
    "comment_json",
    "html_from_text",
    "identity_json",
    "iso",
    "job_status_json",
    "text_from_html",
    "ticket_field_json",
    "ticket_fields_json",
    "ticket_json",
    "user_json",
]

_EMPTY_SOURCE: dict[str, Any] = {"from": {}, "to": {}, "rel": None}
_TAG_RE = re.compile(r"<[^>]+>")


def iso(value: datetime | None) -> str | None:
    """Zendesk's REST timestamps: UTC, whole seconds, ``Z``."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def html_from_text(body: str) -> str:
    paragraphs = "".join(
        f'<p dir="auto">{html.escape(p).replace(chr(10), "<br>")}</p>' for p in body.split("\n\n")
    )
    return f'<div class="zd-comment" dir="auto">{paragraphs}</div>'


def text_from_html(markup: str) -> str:
    spaced = re.sub(r"<br\s*/?>", "\n", markup)
    spaced = re.sub(r"</p>\s*<p[^>]*>", "\n\n", spaced)
    return html.unescape(_TAG_RE.sub("", spaced)).strip()


def _via(channel: str) -> dict[str, Any]:
    return {"channel": channel, "source": dict(_EMPTY_SOURCE)}


def ticket_json(
    ticket: Ticket, *, origin: str, config: ZendeskSandboxConfig, deleted_status: bool = False
) -> dict[str, Any]:
    status = "deleted" if (ticket.deleted and deleted_status) else ticket.status
    return {
        "url": f"{origin}/api/v2/tickets/{ticket.id}.json",
        "id": ticket.id,
        "external_id": ticket.external_id,
        "via": _via(ticket.channel),
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "generated_timestamp": int(ticket.updated_at.timestamp()),
        "type": ticket.type,
        "subject": ticket.subject,
        "raw_subject": ticket.subject,
        "description": ticket.description,
        "priority": ticket.priority,
        "status": status,
        "recipient": None,
        "requester_id": ticket.requester_id,
        "submitter_id": ticket.submitter_id,
        "assignee_id": ticket.assignee_id,
        "organization_id": ticket.organization_id,
        "group_id": ticket.group_id,
        "collaborator_ids": list(ticket.collaborator_ids),
        "follower_ids": list(ticket.follower_ids),
        "email_cc_ids": list(ticket.email_cc_ids),
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": ticket.is_public,
        "due_at": iso(ticket.due_at),
        "tags": list(ticket.tags),
        # Every field of the account, unset ones as null; drop-downs hold their tag,
        # checkboxes a boolean, multiselects a list (the spec says string; the API does not).
        "custom_fields": [
            {"id": spec.id, "value": ticket.custom_fields.get(spec.id)}
            for spec in config.custom_fields
        ],
        "satisfaction_rating": None,
        "sharing_agreement_ids": [],
        "followup_ids": [],
        "ticket_form_id": None,
        "brand_id": None,
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
    }


def user_json(user: User, *, origin: str) -> dict[str, Any]:
    staff = user.role in ("agent", "admin")
    return {
        "id": user.id,
        "url": f"{origin}/api/v2/users/{user.id}.json",
        "name": user.name,
        "email": user.email,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "time_zone": user.time_zone,
        "iana_time_zone": "Etc/UTC" if user.time_zone == "UTC" else user.time_zone,
        "phone": user.phone,
        "shared_phone_number": None,
        "photo": None,
        "locale_id": 1,
        "locale": user.locale,
        "organization_id": user.organization_id,
        "role": user.role,
        "verified": user.verified,
        "external_id": user.external_id,
        "tags": list(user.tags),
        "alias": "",
        "active": user.active,
        "shared": False,
        "shared_agent": False,
        "last_login_at": None,
        "two_factor_auth_enabled": None,
        "signature": "",
        "details": user.details,
        "notes": user.notes,
        "role_type": None,
        "custom_role_id": None,
        "moderator": staff,
        "ticket_restriction": None if staff else "requested",
        "only_private_comments": False,
        "restricted_agent": not staff,
        "suspended": False,
        "default_group_id": None,
        "report_csv": False,
        "user_fields": dict(user.user_fields),
    }


def identity_json(identity: Identity, *, origin: str) -> dict[str, Any]:
    return {
        "url": f"{origin}/api/v2/users/{identity.user_id}/identities/{identity.id}.json",
        "id": identity.id,
        "user_id": identity.user_id,
        "type": identity.type,
        "value": identity.value,
        "verified": identity.verified,
        "primary": identity.primary,
        "created_at": iso(identity.created_at),
        "updated_at": iso(identity.updated_at),
        "undeliverable_count": 0,
        "deliverable_state": "deliverable",
        "verification_method": "low" if identity.verified else "none",
        "verified_at": iso(identity.created_at) if identity.verified else None,
    }


def attachment_json(attachment: Attachment, *, origin: str) -> dict[str, Any]:
    content_url = f"{origin}/attachments/token/{attachment.token}/?name={attachment.file_name}"
    return {
        "url": f"{origin}/api/v2/attachments/{attachment.id}.json",
        "id": attachment.id,
        "file_name": attachment.file_name,
        "content_url": content_url,
        "mapped_content_url": content_url,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": None,
        "height": None,
        "inline": attachment.inline,
        "deleted": False,
        "malware_access_override": False,
        "malware_scan_result": "malware_not_found",
        "thumbnails": [],
    }


def comment_json(comment: Comment, state: ZendeskState, *, origin: str) -> dict[str, Any]:
    return {
        "id": comment.id,
        "type": "Comment",
        "author_id": comment.author_id,
        "body": comment.body,
        "html_body": comment.html_body,
        "plain_body": comment.body,
        "public": comment.public,
        "attachments": [
            attachment_json(state.attachments[a], origin=origin) for a in comment.attachment_ids
        ],
        "audit_id": comment.audit_id,
        "via": _via(comment.channel),
        "created_at": iso(comment.created_at),
        "metadata": {
            "system": {"client": comment.client, "ip_address": "127.0.0.1", "location": ""},
            "custom": {},
        },
    }


def audit_json(audit: Audit) -> dict[str, Any]:
    return {
        "id": audit.id,
        "ticket_id": audit.ticket_id,
        "created_at": iso(audit.created_at),
        "author_id": audit.author_id,
        "metadata": {"system": {}, "custom": {}},
        "via": _via(audit.channel),
        "events": [dict(e) for e in audit.events],
    }


def job_status_json(job: JobStatus, *, origin: str, completed: bool) -> dict[str, Any]:
    return {
        "id": job.id,
        "url": f"{origin}/api/v2/job_statuses/{job.id}.json",
        "job_type": job.job_type,
        "total": job.total,
        "progress": job.total if completed else None,
        "status": "completed" if completed else "queued",
        "message": "Completed" if completed else None,
        "results": [dict(r) for r in job.results] if completed else None,
    }


_SYSTEM_FIELDS: tuple[tuple[int, str, str], ...] = (
    (360000000001, "subject", "Subject"),
    (360000000002, "description", "Description"),
    (360000000003, "status", "Status"),
    (360000000004, "tickettype", "Type"),
    (360000000005, "priority", "Priority"),
    (360000000006, "group", "Group"),
    (360000000007, "assignee", "Assignee"),
)

_SYSTEM_OPTIONS: dict[str, tuple[str, ...]] = {
    "status": ("new", "open", "pending", "hold", "solved", "closed"),
    "tickettype": ("question", "incident", "problem", "task"),
    "priority": ("low", "normal", "high", "urgent"),
}


def ticket_field_json(
    field_id: int,
    *,
    origin: str,
    created_at: datetime,
    spec: CustomFieldSpec | None = None,
    system: tuple[str, str] | None = None,
    position: int = 0,
) -> dict[str, Any]:
    kind: str
    if spec is not None:
        kind, title, removable = spec.type, spec.title, True
    else:
        assert system is not None
        kind, title, removable = system[0], system[1], False
    data: dict[str, Any] = {
        "url": f"{origin}/api/v2/ticket_fields/{field_id}.json",
        "id": field_id,
        "type": kind,
        "title": title,
        "raw_title": title,
        "description": spec.description if spec else "",
        "raw_description": spec.description if spec else "",
        "position": position,
        "active": True,
        "required": False,
        "collapsed_for_agents": False,
        "regexp_for_validation": spec.regexp_for_validation if spec else None,
        "title_in_portal": title,
        "raw_title_in_portal": title,
        "visible_in_portal": not removable,
        "editable_in_portal": not removable,
        "required_in_portal": False,
        "agent_can_edit": True,
        "tag": spec.tag if spec else None,
        "created_at": iso(created_at),
        "updated_at": iso(created_at),
        "removable": removable,
        "key": None,
        "agent_description": None,
    }
    if spec is not None and spec.type in ("tagger", "multiselect"):
        data["custom_field_options"] = [
            {
                "id": o.id,
                "name": o.name,
                "raw_name": o.name,
                "value": o.value,
                "position": i,
                "url": f"{origin}/api/v2/ticket_fields/{field_id}/options/{o.id}.json",
                "default": False,
            }
            for i, o in enumerate(spec.options)
        ]
    if system is not None and system[0] in _SYSTEM_OPTIONS:
        data["system_field_options"] = [
            {"name": v.title(), "value": v} for v in _SYSTEM_OPTIONS[system[0]]
        ]
    return data


def ticket_fields_json(
    config: ZendeskSandboxConfig, *, origin: str, created_at: datetime
) -> list[dict[str, Any]]:
    """System fields first, then the account's custom fields, in position order."""
    fields = [
        ticket_field_json(
            fid, origin=origin, created_at=created_at, system=(kind, title), position=i
        )
        for i, (fid, kind, title) in enumerate(_SYSTEM_FIELDS)
    ]
    fields += [
        ticket_field_json(
            spec.id,
            origin=origin,
            created_at=created_at,
            spec=spec,
            position=len(_SYSTEM_FIELDS) + i,
        )
        for i, spec in enumerate(config.custom_fields)
    ]
    return fields
