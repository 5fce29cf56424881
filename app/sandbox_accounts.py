"""The accounts ``deskstream sandbox`` serves: each platform's default account, plus what the
shipped sync rules (``config/*.yaml``) refer to, so that ``deskstream config check`` passes
against a first run of the sandboxes as it would against a prepared real account.

* Zendesk: the drop-down ticket field ``custom_fields.plan`` fills (id 360012345), with one
  option per plan the rules allow. Its shape is the Ticket Fields API's ``tagger`` field
  ("Ticket Fields", https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_fields/;
  ``TicketFieldObject`` in the Zendesk Support OpenAPI document): each option is a
  ``{id, name, value}`` whose value is the tag Zendesk stores.
* Intercom: the contact data attributes the rules read, ``plan`` and ``account_health``, as
  an admin creates them ("Create a data attribute", ``createDataAttribute`` in the 2.14
  OpenAPI document): custom ``string`` attributes of the ``contact`` model.

The platforms' defaults stay as they are for everything else (tests rely on an Intercom
workspace without custom attributes); only this command adds these.
"""

from __future__ import annotations

from typing import Any

__all__ = ["account_options"]

#: Zendesk's field id in config/sync.example.yaml and the plans it allows
PLAN_FIELD_ID = 360012345
PLANS = ("free", "pro", "premium", "enterprise")
#: Intercom contact attributes the example rules read (name → data type)
CONTACT_ATTRIBUTES = {"plan": "string", "account_health": "string"}


def _zendesk() -> dict[str, Any]:
    from sandboxes.zendesk.config import (
        DEFAULT_CUSTOM_FIELDS,
        CustomFieldOption,
        CustomFieldSpec,
        ZendeskSandboxConfig,
    )

    plan = CustomFieldSpec(
        id=PLAN_FIELD_ID,
        title="Customer plan",
        type="tagger",
        description="The customer's plan, filled by Deskstream from the Intercom contact",
        options=tuple(
            CustomFieldOption(id=360003000001 + i, name=name.title(), value=name)
            for i, name in enumerate(PLANS)
        ),
    )
    return {"config": ZendeskSandboxConfig(custom_fields=(*DEFAULT_CUSTOM_FIELDS, plan))}


def _intercom() -> dict[str, Any]:
    from sandboxes.intercom.config import IntercomSandboxConfig

    return {
        "config": IntercomSandboxConfig(
            custom_attributes={
                "contact": dict(CONTACT_ATTRIBUTES),
                "conversation": {},
                "company": {},
            }
        )
    }


def account_options(platform: str) -> dict[str, Any]:
    """The keyword arguments (``config=...``) of ``platform``'s sandbox ``create``; the
    sandbox modules are imported here, when that platform is built, so one that cannot be
    imported is reported like any other unavailable platform."""
    if platform == "zendesk":
        return _zendesk()
    if platform == "intercom":
        return _intercom()
    return {}
