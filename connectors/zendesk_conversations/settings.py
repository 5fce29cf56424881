"""What a Zendesk Conversations connector needs beyond the shared connector settings.

The shared ones carry the rest: ``api_base_url`` (``https://<subdomain>.zendesk.com/sc`` or
a sandbox), ``api_user``/``api_token`` (the custom integration's API key id and secret: calls
made with it are the integration's own, which makes ``passControl`` idempotent),
``service_account_id`` (the integration's id) and ``secret`` (the webhook's ``X-API-Key``).
Read from the same ``DESKSTREAM_CONNECTORS__<id>__*`` names, e.g. ``..._APP_ID``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConversationsSettings"]


class ConversationsSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    #: the Conversations app (``/v2/apps/{appId}/...``)
    app_id: str = Field(min_length=1)
    #: the switchboard integration of Zendesk's agent workspace, by name or id
    handoff_to: str = "zd-agentWorkspace"
    #: what the customer reads when the agent released the conversation
    ended_text: str = (
        "The human support session has ended. Please start a new conversation if you need "
        "more help."
    )
