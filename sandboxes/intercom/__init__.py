"""Offline Intercom (REST API 2.14) for demos, tests and rehearsals.

Routes (Bearer auth, ``Intercom-Version``, 10-second rate-limit windows with
``X-RateLimit-*`` headers and ``rate_limit_exceeded`` 429s, ``error.list`` errors):

* contacts: ``POST /contacts``, ``GET /contacts``, ``GET|PUT|DELETE /contacts/{id}``,
  ``POST /contacts/search``, ``GET /contacts/find_by_external_id/{external_id}``,
  ``GET|POST /contacts/{id}/tags``, ``DELETE /contacts/{id}/tags/{tag_id}``;
* conversations: ``POST /conversations``, ``GET /conversations``,
  ``GET|PUT|DELETE /conversations/{id}``, ``POST /conversations/{id}/reply``,
  ``POST /conversations/{id}/parts`` (close, open, snoozed, assignment),
  ``POST /conversations/{id}/tags``, ``DELETE /conversations/{id}/tags/{tag_id}``,
  ``POST /conversations/search``;
* messages: ``POST /messages`` (admin-initiated; opens a conversation with
  ``create_conversation_without_contact_reply``);
* workspace: ``GET /me``, ``GET /admins``, ``GET /admins/{id}``, ``GET|POST /tags``,
  ``GET /tags/{id}``, ``GET|POST /data_attributes``;
* the teammate's inbox (no API 2.14 equivalent):
  ``PUT /_sandbox/inbox/conversations/{id}/priority``.

Every change sends a ``notification_event`` signed with ``X-Hub-Signature: sha1=<hex>``
through the base's webhook dispatcher (topics ``contact.user.created``,
``contact.user.updated``, ``contact.lead.created``, ``contact.<role>.tag.created|deleted``,
``contact.deleted``, ``conversation.user.created``, ``conversation.admin.single.created``
(``POST /messages``), ``conversation.user.replied``,
``conversation.admin.replied|noted|closed|opened|snoozed|unsnoozed|assigned``,
``conversation.priority.updated``, ``conversation_part.tag.created``,
``conversation.deleted``, and ``ping``). Removing a conversation tag sends nothing: Intercom
has no topic for it (see ``conversations``).
"""

from __future__ import annotations

from sandboxes.intercom.config import AdminSeed, IntercomSandboxConfig
from sandboxes.intercom.platform import IntercomSandbox
from sandboxes.intercom.webhooks import sign, verify

__all__ = ["AdminSeed", "IntercomSandbox", "IntercomSandboxConfig", "sign", "verify"]
