"""Settings of one emulated Intercom workspace (app).

Rate limits: "Rate Limiting",
https://developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting (the newest
version in reach; the 1.4 and 2.1 versions show the same headers): private apps get 10,000
calls a minute per app and 25,000 per workspace, "evenly distribute[d] into 10 second windows";
``X-RateLimit-Limit`` reports the window's budget. How a minute's budget rounds into a window
is not settled: the 2.17 page's example says 1,000 a minute "is 167 per 10-second window",
the unversioned page's text says 166 (as transcribed by an API catalogue; searched "Intercom
rate limiting X-RateLimit-Reset 10 second", "Intercom API 2.14 rate limiting 10 second window
private app 10,000 per minute workspace 25,000"). The sandbox keeps the harsher, rounded-down
figure (1,000 → 166, 10,000 → 1,666); the client budgets the same way
(``connectors/intercom/client.py``, ``budget_for``). The 25,000 workspace limit is not
modelled: a sandbox workspace has one app.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sandboxes.base.staff import SHARED

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
    enforces it in 10-second windows, so each window allows a sixth of it, rounded down (see
    the module docstring).
    """

    model_config = ConfigDict(frozen=True)

    app_id: str = "sbx4ntrc"
    app_name: str = "Deskstream Sandbox"
    timezone: str = "UTC"
    access_tokens: tuple[str, ...] = ("sandbox-intercom-token",)
    client_secret: str = "sandbox-intercom-client-secret"  # noqa: S105 - a sandbox default
    rate_limit_per_minute: int = Field(10_000, ge=6)
    rate_limit_window_s: float = Field(10.0, gt=0)
    #: the token's own admin first, then the shared support team (``sandboxes.base.staff``:
    #: the same people, by email, as the Zendesk agents and Salesforce users)
    admins: tuple[AdminSeed, ...] = (
        AdminSeed(id="991267001", name="Sandbox Owner", email="owner@sandbox.example"),
        *(
            AdminSeed(id=str(991267002 + i), name=person.name, email=person.email)
            for i, person in enumerate(SHARED)
        ),
    )
    team_ids: tuple[int, ...] = (5017691,)
    #: Custom data attributes that exist from the start, by model then name -> data type
    #: (string, integer, float, boolean, date). Writing an unknown one is refused, as in
    #: Intercom; contact and company attributes can also be created with POST /data_attributes.
    custom_attributes: dict[str, dict[str, str]] = Field(default_factory=_no_custom_attributes)
    #: A new contact is found by ``POST /contacts/search`` only this long after its
    #: creation: "If a contact has recently been created, there is a possibility that it will
    #: not yet be available when searching ... This delay can take a few minutes" (the
    #: OpenAPI 2.14 description of Search contacts, "Contact Creation Delay"). Finding it by
    #: id or external id is immediate. 0 by default (rehearsals' own lookups stay quick).
    search_index_lag_s: float = Field(0.0, ge=0)
    #: Topics the webhook subscription receives; None means every topic.
    webhook_topics: frozenset[str] | None = None
    #: Send the ``ping`` notification on start, as Intercom does when a subscription is saved.
    send_ping_on_start: bool = False
    #: The topic sent when a snooze runs out and the conversation reopens; None (the default)
    #: sends nothing, since the docs name only an admin's unsnooze (UNVERIFIED either way).
    snooze_expiry_topic: str | None = None

    @property
    def window_limit(self) -> int:
        """Requests allowed per rate-limit window (rounded down: the harsher reading)."""
        return max(1, int(self.rate_limit_per_minute * self.rate_limit_window_s // 60))
