"""Offline, faithful Zendesk Conversations (Sunshine Conversations v2) sandbox.

Serves ``/v2/apps/{appId}/...`` (and the same under ``/sc``): users, personal conversations,
messages, the switchboard and its four control actions, with basic-key and HS256-JWT auth, the
platform's error bodies, and v2 webhooks authenticated with ``X-API-Key``. Sandbox-only
``/_sandbox/agent/...`` and ``/_sandbox/enduser/...`` endpoints act as the human agent in
Zendesk's agent workspace and as the end user in the Web Widget.
"""

from __future__ import annotations

from sandboxes.zendesk_conversations.config import (
    SUNSHINE_RETRY_POLICY,
    SunshineSandboxConfig,
)
from sandboxes.zendesk_conversations.routes_agent import AGENT_ID_METADATA_KEY
from sandboxes.zendesk_conversations.sandbox import SunshineSandbox

__all__ = [
    "AGENT_ID_METADATA_KEY",
    "SUNSHINE_RETRY_POLICY",
    "SunshineSandbox",
    "SunshineSandboxConfig",
]
