"""Link ids: the one id a set of mirrored records shares across platforms.

A link id is derived, never stored first and looked up later: the same origin record always
yields the same link id, on any worker, after any replay. That is what makes creates
idempotent. When Deskstream creates the mirror of a record, it writes the link id into the
target's own external-id field (Zendesk ``external_id``, Salesforce ``Deskstream_Link_Id__c``),
so the target's webhooks carry the link back and a lookup by external id finds an earlier
create after a crash.

- a case link is named by the record the conversation started on (an Intercom conversation,
  or a Zendesk ticket nobody mirrored yet);
- a contact link is named by the customer's normalised primary email when there is one (the
  match key of every platform), else by the origin record.
"""

from __future__ import annotations

import uuid

from schemas.ids import uuid5_hex

__all__ = ["LINK_PREFIX", "case_link_id", "contact_link_id", "is_link_id", "normalise_email"]

LINK_PREFIX = "lnk_"
_NAMESPACE = uuid.UUID("0b8f8a44-54a1-4f0e-9b1c-1d5e4c2b7a61")  # fixed forever


def _derive(*parts: str) -> str:
    return LINK_PREFIX + uuid5_hex(_NAMESPACE, "\x1f".join(parts))


def normalise_email(email: str) -> str:
    """Emails match case-insensitively and without surrounding blanks (no provider tricks:
    dots and plus-tags are real, distinct addresses at most providers)."""
    return email.strip().lower()


def case_link_id(platform: str, connector_id: str, entity_id: str) -> str:
    return _derive("case", platform, connector_id, entity_id)


def contact_link_id(email: str | None, *, platform: str, connector_id: str, entity_id: str) -> str:
    if email:
        return _derive("contact", "email", normalise_email(email))
    return _derive("contact", platform, connector_id, entity_id)


def is_link_id(value: str | None) -> bool:
    return bool(value) and str(value).startswith(LINK_PREFIX) and len(str(value)) == 36
