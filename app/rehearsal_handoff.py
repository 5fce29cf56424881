"""The rehearsal stack (``app.rehearsal.sync_stack``) with an AI client handing off to Zendesk:
its rules, the Zendesk account's reason field, the client's key, and the client's POST.

Shared by the hand-off e2e tests and ``bench/handoff.py``, so both exercise the same setup.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.rehearsal import SyncStack
from connectors.base.links import case_link_id
from sandboxes.zendesk.config import DEFAULT_CUSTOM_FIELDS, CustomFieldSpec

__all__ = [
    "CLIENT",
    "ENTERPRISE_GROUP",
    "REASON_FIELD",
    "SUPPORT_TEAM",
    "handoff_body",
    "handoff_link",
    "handoff_stack_options",
    "post_handoff",
]

CLIENT = "widget"
#: the Zendesk ticket field an admin made for the hand-off reason
REASON_FIELD = 360001000042
ENTERPRISE_GROUP = 360000777
#: the Intercom sandbox's team (``IntercomSandboxConfig.team_ids``)
SUPPORT_TEAM = 5017691

_RULES = f"""
version: 2
connectors: {{intercom: intercom, zendesk: zendesk}}
routes:
  - {{from: intercom, to: zendesk, create: {{enabled: true}}}}
handoff:
  default_target: zendesk_ticket
  flows:
    zendesk:
      reason_field: "{REASON_FIELD}"
      groups_by_segment: {{enterprise: {ENTERPRISE_GROUP}}}
      follow_up_seconds: {{follow_up}}
    intercom:
      groups_by_segment: {{enterprise: {SUPPORT_TEAM}}}
      follow_up_seconds: {{follow_up}}
"""


def handoff_stack_options(
    key: str, *, callback_url: str | None = None, follow_up_seconds: float = 0.0
) -> dict[str, Any]:
    """``sync_stack`` keyword arguments: the rules, the reason field, the client ``key``, and
    the client's callback URL for pending follow-ups after ``follow_up_seconds`` (0: none)."""
    reason = CustomFieldSpec(id=REASON_FIELD, title="AI hand-off reason", type="text")
    client = {
        f"DESKSTREAM_CONNECTORS__{CLIENT}__PLATFORM": "ai_agent",
        f"DESKSTREAM_CONNECTORS__{CLIENT}__SECRET": key,
    }
    if callback_url:
        client[f"DESKSTREAM_CONNECTORS__{CLIENT}__API_BASE_URL"] = callback_url
    return {
        "sync_yaml": _RULES.replace("{follow_up}", f"{follow_up_seconds:g}"),
        "zendesk_config": {"custom_fields": (*DEFAULT_CUSTOM_FIELDS, reason)},
        "extra_env": client,
    }


def handoff_link(conversation: str) -> str:
    return case_link_id("ai_agent", CLIENT, conversation)


def handoff_body(conversation: str, email: str, **changes: Any) -> dict[str, Any]:
    return {
        "conversation_id": conversation,
        "customer": {"email": email, "name": "Ana Núñez"},
        "reason": "customer asked for a human",
        "intent": "refund",
        "sentiment": "frustrated",
        "summary": "Charged twice for order A-1001; wants the second charge refunded.",
        "collected_fields": {"order": "A-1001"},
        "transcript": [
            {"role": "customer", "text": "I was charged twice", "at": "2026-12-02T10:00:00Z"},
            {"role": "ai", "text": "Let me get you a person.", "at": "2026-12-02T10:01:00Z"},
        ],
        "segment": "enterprise",
        **changes,
    }


async def post_handoff(stack: SyncStack, key: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.worker.url, timeout=15) as http:
        return await http.post(
            "/handoff",
            content=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {key}", "X-Deskstream-Client": CLIENT},
        )
