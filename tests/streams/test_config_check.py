from __future__ import annotations

from typing import Any

import pytest

from connectors.base.adapter import FieldInventory, InventoryField
from streams.config import SyncConfig
from streams.config_check import check_config

INVENTORIES = {
    "zendesk": FieldInventory(
        case_fields=(
            InventoryField("100", "Plan", options=("plan_pro", "plan_basic")),
            InventoryField("200", "Tier"),
            InventoryField("300", "Old", active=False),
        )
    ),
    "intercom": FieldInventory(contact_attributes=frozenset({"plan"})),
}
CONNECTORS = {"ic": "intercom", "zd": "zendesk"}
#: where a first-format file's custom fields are: the Intercom → Zendesk route's creates
CUSTOM = "routes[intercom->zendesk].create.custom_fields"


def _check(**rules: Any) -> list[str]:
    config = SyncConfig.model_validate({"connectors": {"intercom": "ic", "zendesk": "zd"}, **rules})
    findings = check_config(config, connectors=CONNECTORS, inventories=INVENTORIES)
    return [f"{f.level} {f.where}" for f in findings]


def test_a_config_that_fits_the_account_has_no_findings() -> None:
    assert (
        _check(
            custom_fields={
                "plan": {"zendesk_field_id": 100, "source": "contact.plan", "allowed": ["plan_pro"]}
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("rules", "finding"),
    [
        pytest.param(
            {"custom_fields": {"x": {"zendesk_field_id": 999, "source": "contact.plan"}}},
            f"error {CUSTOM}.x",
            id="missing-field",
        ),
        pytest.param(
            {"custom_fields": {"x": {"zendesk_field_id": 300, "source": "contact.plan"}}},
            f"error {CUSTOM}.x",
            id="inactive",
        ),
        pytest.param(
            {
                "custom_fields": {
                    "x": {"zendesk_field_id": 100, "source": "contact.plan", "allowed": ["gold"]}
                }
            },
            f"error {CUSTOM}.x",
            id="unknown-option",
        ),
        pytest.param(
            {"custom_fields": {"x": {"zendesk_field_id": 100, "source": "contact.plan"}}},
            f"warning {CUSTOM}.x",
            id="no-allowed",
        ),
        pytest.param(
            {
                "custom_fields": {
                    "x": {"zendesk_field_id": 200, "source": "contact.custom_attributes.tier"}
                }
            },
            f"error {CUSTOM}.x",
            id="missing-attribute",
        ),
        pytest.param(
            {"profile_fields": {"custom_attributes.health": "both"}},
            "error profile_fields.custom_attributes.health",
            id="profile-attribute",
        ),
        pytest.param(
            {"connectors": {"intercom": "zd", "zendesk": "zd"}},
            "error connectors.intercom",
            id="wrong-platform",
        ),
    ],
)
def test_mismatches_are_named(rules: dict[str, Any], finding: str) -> None:
    assert finding in _check(**rules)
