"""What a Zendesk sandbox account looks like: plan, limits, credentials, custom fields.

Every number that the reference marks as a plan setting or UNVERIFIED is a field here, so a
team can rehearse against the limits of its own account (``plan="team"`` for 200 requests a
minute, ``invalid_option_policy="reject"`` for a stricter account than Zendesk's default).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sandboxes.base.staff import SHARED, ZENDESK_ONLY

__all__ = [
    "DEFAULT_AGENTS",
    "DEFAULT_CUSTOM_FIELDS",
    "PLAN_RATE_LIMITS",
    "AgentSeed",
    "CustomFieldOption",
    "CustomFieldSpec",
    "OAuthTokenSpec",
    "Plan",
    "ZendeskSandboxConfig",
]

Plan = Literal["team", "growth", "professional", "enterprise", "enterprise_plus", "high_volume"]

#: Requests per minute per account, from Zendesk's published plan limits.
PLAN_RATE_LIMITS: dict[str, int] = {
    "team": 200,
    "growth": 400,
    "professional": 400,
    "enterprise": 700,
    "enterprise_plus": 2500,
    "high_volume": 2500,
}

FieldType = Literal[
    "text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "tagger", "multiselect"
]


class CustomFieldOption(BaseModel):
    """A drop-down option: ``name`` is what agents see, ``value`` is the tag stored."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    value: str


class CustomFieldSpec(BaseModel):
    """A custom ticket field as an admin would configure it."""

    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    type: FieldType
    options: tuple[CustomFieldOption, ...] = ()
    #: Checkbox fields add this tag to the ticket when ticked, like Zendesk does.
    tag: str | None = None
    regexp_for_validation: str | None = None
    description: str = ""


class AgentSeed(BaseModel):
    """A staff user the account has from the start (``role`` agent or admin)."""

    model_config = ConfigDict(frozen=True)

    name: str
    email: str
    role: Literal["agent", "admin"] = "agent"


#: the shared support team (``sandboxes.base.staff``) and one agent only Zendesk knows
DEFAULT_AGENTS: tuple[AgentSeed, ...] = tuple(
    AgentSeed(name=person.name, email=person.email) for person in (*SHARED, *ZENDESK_ONLY)
)


class OAuthTokenSpec(BaseModel):
    """An OAuth access token issued to ``email`` with ``scopes``."""

    model_config = ConfigDict(frozen=True)

    email: str
    scopes: tuple[str, ...] = ("read", "write")


DEFAULT_CUSTOM_FIELDS: tuple[CustomFieldSpec, ...] = (
    CustomFieldSpec(
        id=360001000001,
        title="Plan",
        type="tagger",
        options=(
            CustomFieldOption(id=360002000001, name="Basic", value="plan_basic"),
            CustomFieldOption(id=360002000002, name="Pro", value="plan_pro"),
            CustomFieldOption(id=360002000003, name="Enterprise", value="plan_enterprise"),
        ),
    ),
    CustomFieldSpec(id=360001000002, title="Deskstream link", type="text"),
    CustomFieldSpec(id=360001000003, title="Escalated by AI", type="checkbox", tag="ai_escalated"),
    CustomFieldSpec(id=360001000004, title="Order number", type="integer"),
    CustomFieldSpec(
        id=360001000005,
        title="Topics",
        type="multiselect",
        options=(
            CustomFieldOption(id=360002000011, name="Billing", value="topic_billing"),
            CustomFieldOption(id=360002000012, name="Shipping", value="topic_shipping"),
            CustomFieldOption(id=360002000013, name="Returns", value="topic_returns"),
        ),
    ),
)


class ZendeskSandboxConfig(BaseModel):
    """The emulated account. Defaults model an Enterprise account with one integration user."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subdomain: str = "deskstream-sandbox"
    account_id: int = 12514403
    # Enterprise is the default because the docs' own header examples (700) assume it and a
    # contact center at Deskstream's volume runs on it; ``plan="team"`` gives 200/min.
    plan: Plan = "enterprise"
    rate_limit_per_minute: int | None = Field(None, ge=1, description="overrides the plan")
    #: "Rate limits", https://developer.zendesk.com/api-reference/introduction/rate-limits,
    #: endpoint limits of Update Ticket: 30 updates per 10 minutes per user per ticket, and
    #: 100 requests a minute per account (300 with the High Volume add-on), on top of the plan.
    ticket_update_limit: int = Field(30, ge=1)
    ticket_update_window_s: float = Field(600.0, gt=0)
    ticket_update_account_per_minute: int = Field(100, ge=1)
    incremental_export_per_minute: int = Field(10, ge=1)
    #: The spec: "Data isn't provided for the most recent minute" of the incremental export.
    incremental_export_lag_s: float = Field(60.0, ge=0)
    #: A new user is found by Search (``users/search?query=``) only this long after its
    #: creation: "It can take up to a few minutes for new tickets, users, and other
    #: resources to be indexed for search" (Search API,
    #: https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/).
    #: Lookups that are not search (``?external_id=``, ``create_or_update``'s match, ``GET
    #: users/{id}``) see it at once. 0 by default, so people's own lookups in rehearsals are
    #: not slowed; the contact-hold tests set it.
    search_index_lag_s: float = Field(0.0, ge=0)
    incremental_export_page_size: int = Field(1000, ge=1, le=1000)
    idempotency_ttl_s: float = Field(7200.0, gt=0)
    upload_token_ttl_s: float = Field(3600.0, gt=0)
    max_comments: int = Field(5000, ge=1)
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_bulk: int = Field(100, ge=1)
    # The Ticket Import API runs no triggers; whether event-subscription webhooks fire for an
    # import is not documented (UNVERIFIED). True sends ``created`` + ``comment_added`` events.
    import_emits_events: bool = True
    # Zendesk accepts a drop-down value that is not one of the field's tags and silently keeps
    # the old value (reported by client-library users; no error in the response). "reject"
    # answers 422 RecordInvalid instead, for rehearsing against a stricter validation.
    invalid_option_policy: Literal["drop", "reject"] = "drop"
    admin_email: str = "admin@deskstream-sandbox.test"
    integration_email: str = "deskstream@deskstream-sandbox.test"
    integration_name: str = "Deskstream Integration"
    #: agents seeded after the admin and the integration user, with ids of their own range
    #: (customers' ids stay where they were)
    agents: tuple[AgentSeed, ...] = DEFAULT_AGENTS
    api_tokens: tuple[str, ...] = ("sandbox-api-token",)
    oauth_tokens: dict[str, OAuthTokenSpec] = Field(
        default_factory=lambda: {
            "sandbox-oauth-token": OAuthTokenSpec(
                email="deskstream@deskstream-sandbox.test",
                scopes=("read", "tickets:write", "users:write"),
            )
        }
    )
    webhook_id: str = "01HSANDBOXZENDESKWEBHOOK01"
    webhook_secret: str = "sandbox-zendesk-webhook-signing-secret"  # noqa: S105 - sandbox
    custom_fields: tuple[CustomFieldSpec, ...] = DEFAULT_CUSTOM_FIELDS

    @property
    def account_rate_limit(self) -> int:
        return self.rate_limit_per_minute or PLAN_RATE_LIMITS[self.plan]
