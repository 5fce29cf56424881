"""Settings of one emulated Intercom workspace (app)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AdminSeed", "IntercomSandboxConfig"]


class AdminSeed(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str
    job_title: str = "Support"


def _no_custom_attributes() -> dict[str, dict[str, str]]:
    return {"contact": {}, "conversation": {}, "company": {}}


class IntercomSandboxConfig(BaseModel):
    """Defaults describe a private app on a workspace in UTC.

    ``rate_limit_per_minute`` is the documented private-app budget (10,000/min); Intercom
    enforces it in 10-second windows, so each window allows a sixth of it.
    """

    model_config = ConfigDict(frozen=True)

    app_id: str = "sbx4ntrc"
    app_name: str = "Deskstream Sandbox"
    timezone: str = "UTC"
    access_tokens: tuple[str, ...] = ("sandbox-intercom-token",)
    client_secret: str = "sandbox-intercom-client-secret"  # noqa: S105 - a sandbox default
    rate_limit_per_minute: int = Field(10_000, ge=6)
    rate_limit_window_s: float = Field(10.0, gt=0)
    admins: tuple[AdminSeed, ...] = (
        AdminSeed(id="991267001", name="Sandbox Owner", email="owner@sandbox.example"),
        AdminSeed(id="991267002", name="Ada Agent", email="ada@sandbox.example"),
        AdminSeed(id="991267003", name="Ben Agent", email="ben@sandbox.example"),
    )
    team_ids: tuple[int, ...] = (5017691,)
    #: Custom data attributes that exist from the start, by model then name -> data type
    #: (string, integer, float, boolean, date). Writing an unknown one is refused, as in
    #: Intercom; contact and company attributes can also be created with POST /data_attributes.
    custom_attributes: dict[str, dict[str, str]] = Field(default_factory=_no_custom_attributes)
    #: Topics the webhook subscription receives; None means every topic.
    webhook_topics: frozenset[str] | None = None
    #: Send the ``ping`` notification on start, as Intercom does when a subscription is saved.
    send_ping_on_start: bool = False
    #: The topic sent when a snooze runs out and the conversation reopens; None (the default)
    #: sends nothing, since the docs name only an admin's unsnooze (UNVERIFIED either way).
    snooze_expiry_topic: str | None = None

    @property
    def window_limit(self) -> int:
        """Requests allowed per rate-limit window."""
        return max(1, int(self.rate_limit_per_minute * self.rate_limit_window_s // 60))
