"""An offline, faithful Zendesk Support API (``deskstream sandbox --platforms zendesk``).

Routes (each also with Zendesk's ``.json`` suffix)::

    POST   /api/v2/tickets                      201 {"ticket", "audit"}; Idempotency-Key
    GET    /api/v2/tickets[?external_id=]       offset or cursor pagination
    GET|PUT|DELETE /api/v2/tickets/{id}
    GET    /api/v2/tickets/{id}/comments        GET /api/v2/tickets/{id}/audits
    POST   /api/v2/tickets/create_many          PUT /api/v2/tickets/update_many
    GET    /api/v2/job_statuses/{id}
    POST   /api/v2/imports/tickets              201 {"ticket"}; a thread with authors and times
    POST   /api/v2/users                        POST /api/v2/users/create_or_update
    GET|PUT /api/v2/users/{id}                  GET /api/v2/users/me
    GET    /api/v2/users/search?query=|external_id=
    GET|POST /api/v2/users/{id}/identities
    POST   /api/v2/uploads?filename=[&token=]   DELETE /api/v2/uploads/{token}
    GET    /api/v2/attachments/{id}             GET /attachments/token/{token}/?name=
    GET    /api/v2/ticket_fields
    GET    /api/v2/incremental/tickets/cursor?start_time=|cursor=

Every change is sent as a signed event-subscription webhook (:mod:`.events`).
"""

from __future__ import annotations

from sandboxes.zendesk.auth import basic_header
from sandboxes.zendesk.config import (
    PLAN_RATE_LIMITS,
    CustomFieldOption,
    CustomFieldSpec,
    OAuthTokenSpec,
    ZendeskSandboxConfig,
)
from sandboxes.zendesk.events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ZENDESK_RETRY_POLICY,
    sign_webhook,
)
from sandboxes.zendesk.sandbox import ZendeskSandbox

__all__ = [
    "PLAN_RATE_LIMITS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ZENDESK_RETRY_POLICY",
    "CustomFieldOption",
    "CustomFieldSpec",
    "OAuthTokenSpec",
    "ZendeskSandbox",
    "ZendeskSandboxConfig",
    "basic_header",
    "sign_webhook",
]
