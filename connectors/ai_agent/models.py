"""The body of ``POST /handoff``: what the AI side knows when it hands a conversation over.

Unknown fields are refused (a typo would otherwise silently drop context), and every problem
names its field, so a client's 422 says what to fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = ["TARGETS", "HandoffCustomer", "HandoffLine", "HandoffRequest", "Target"]

#: where a hand-off can go (``Handoff.target``); the chat bridge consumes ``live_chat``
Target = Literal["zendesk_ticket", "salesforce_case", "intercom_conversation", "live_chat"]
TARGETS: tuple[str, ...] = get_args(Target)

_Text = Field(min_length=1, max_length=10_000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class HandoffCustomer(_Strict):
    """The customer as the AI side knows them; at least an email or an external id, so the
    platforms' user is found rather than created twice."""

    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    external_id: str | None = Field(default=None, min_length=1, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _identified(self) -> HandoffCustomer:
        if self.email is None and self.external_id is None:
            raise ValueError("give an email or an external_id")
        return self


class HandoffLine(_Strict):
    role: Literal["customer", "ai", "agent"]
    text: str = _Text
    at: AwareDatetime


class HandoffRequest(_Strict):
    conversation_id: str = Field(min_length=1, max_length=255, pattern=r"^[^\s]+$")
    customer: HandoffCustomer
    reason: str = Field(min_length=1, max_length=255)
    transcript: list[HandoffLine] = Field(default_factory=list, max_length=500)
    collected_fields: dict[str, str] = Field(default_factory=dict, max_length=100)
    intent: str | None = Field(default=None, max_length=255)
    sentiment: str | None = Field(default=None, max_length=64)
    summary: str | None = Field(default=None, max_length=10_000)
    target: Target | None = None
    segment: str | None = Field(default=None, max_length=64)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)
    #: when the AI side decided to hand off; the time of arrival when absent
    requested_at: datetime | None = None
