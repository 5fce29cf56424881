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
  ``GET /tags/{id}``, ``GET|POST /data_attributes``.

Every change sends a ``notification_event`` signed with ``X-Hub-Signature: sha1=<hex>``
through the base's webhook dispatcher (topics ``contact.user.created``,
``contact.user.updated``, ``contact.lead.created``, ``contact.user.tag.created``,
``contact.deleted``, ``conversation.user.created``, ``conversation.admin.single.created``
(``POST /messages``), ``conversation.user.replied``,
``conversation.admin.replied|noted|closed|opened|snoozed|assigned``,
``conversation_part.tag.created``, ``conversation.deleted``, and ``ping``).
"""

from __future__ import annotations

from connectors.intercom.sandbox.config import AdminSeed, IntercomSandboxConfig
from connectors.intercom.sandbox.platform import IntercomSandbox
from connectors.intercom.sandbox.webhooks import sign, verify

__all__ = ["AdminSeed", "IntercomSandbox", "IntercomSandboxConfig", "sign", "verify"]
