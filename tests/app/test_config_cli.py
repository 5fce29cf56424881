"""``config check`` against the real sandboxes' inventories (read-only API calls)."""

from __future__ import annotations

from app.config_cli import run_check
from app.settings import load_settings
from connectors.base.registry import read_inventory
from sandboxes.base import run_sandboxes
from sandboxes.intercom import IntercomSandbox
from sandboxes.salesforce import SalesforceSandbox
from sandboxes.zendesk import ZendeskSandbox
from streams.config import SyncConfig
from streams.config_check import check_config

#: where a first-format file's custom fields are: the Intercom → Zendesk route's creates
CUSTOM = "routes[intercom->zendesk].create.custom_fields"
PLAN_FIELD = 360001000001  # the sandbox's "Plan" drop-down: plan_basic, plan_pro, ...


async def test_check_reads_the_live_inventories() -> None:
    async with run_sandboxes([IntercomSandbox.create(), ZendeskSandbox.create()]) as running:
        settings = load_settings(
            connectors={
                "ic": {
                    "platform": "intercom",
                    "api_base_url": running.url("intercom"),
                    "api_token": "sandbox-intercom-token",
                },
                "zd": {
                    "platform": "zendesk",
                    "api_base_url": running.url("zendesk"),
                    "api_user": "deskstream@deskstream-sandbox.test",
                    "api_token": "sandbox-api-token",
                },
            }
        )
        rules = SyncConfig.model_validate(
            {
                "connectors": {"intercom": "ic", "zendesk": "zd"},
                "custom_fields": {
                    "plan": {
                        "zendesk_field_id": PLAN_FIELD,
                        "source": "case.custom_fields.plan",
                        "allowed": ["plan_pro", "plan_gold"],
                    },
                    "tier": {
                        "zendesk_field_id": 360001000002,  # a text field: no options
                        "source": "contact.custom_attributes.tier",
                    },
                    "gone": {"zendesk_field_id": 42, "source": "case.custom_fields.x"},
                },
            }
        )
        findings = sorted((f.where, f.level, f.message) for f in await run_check(settings, rules))
    assert [(where, level) for where, level, _ in findings] == [
        (f"{CUSTOM}.gone", "error"),
        (f"{CUSTOM}.plan", "error"),
        (f"{CUSTOM}.tier", "error"),
    ]
    assert "Zendesk has no ticket field 42" in findings[0][2]
    assert "plan_gold" in findings[1][2]  # not an option of the live drop-down
    assert "plan_pro" not in findings[1][2].split("(")[0]  # an existing option is fine
    assert "'tier'" in findings[2][2]  # no such Intercom contact attribute


async def test_check_reads_the_salesforce_case_fields() -> None:
    sandbox = SalesforceSandbox.create()
    async with run_sandboxes([sandbox]) as running:
        settings = load_settings(
            connectors={
                "crm": {
                    "platform": "salesforce",
                    "login_url": running.url("salesforce"),
                    "client_id": sandbox.config.consumer_key,
                    "client_secret": sandbox.config.consumer_secret,
                    "refresh_token": sandbox.config.refresh_token,
                },
                "zd": {"platform": "zendesk", "api_base_url": "http://127.0.0.1:9"},
            }
        )
        rules = SyncConfig.model_validate(
            {
                "version": 2,
                "connectors": {"zendesk": "zd", "salesforce": "crm"},
                "routes": [
                    {
                        "from": "zendesk",
                        "to": "salesforce",
                        "create": {
                            "enabled": True,
                            "custom_fields": {
                                "reason": {
                                    "field": "AI_Handoff_Reason__c",
                                    "source": "case.custom_fields.ai_handoff_reason",
                                },
                                "gone": {"field": "No_Such__c", "source": "case.custom_fields.x"},
                            },
                        },
                    }
                ],
            }
        )
        inventories = {"salesforce": await read_inventory(settings.connectors["crm"])}
    findings = check_config(
        rules,
        connectors={"crm": "salesforce", "zd": "zendesk"},
        inventories={p: i for p, i in inventories.items() if i is not None},
    )
    assert [(f.where, f.message) for f in findings] == [
        (
            "routes[zendesk->salesforce].create.custom_fields.gone",
            "Salesforce has no Case field No_Such__c",
        )
    ]
