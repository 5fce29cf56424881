from __future__ import annotations

from typing import Any

import pytest

from streams.config import SyncConfig
from streams.config_check import check_config

FIELDS = [
    {
        "id": 100,
        "active": True,
        "custom_field_options": [{"value": "plan_pro"}, {"value": "plan_basic"}],
    },
    {"id": 200, "active": True, "custom_field_options": []},
    {"id": 300, "active": False, "custom_field_options": []},
]
CONNECTORS = {"ic": "intercom", "zd": "zendesk"}


def _check(**rules: Any) -> list[str]:
    config = SyncConfig.model_validate({"connectors": {"intercom": "ic", "zendesk": "zd"}, **rules})
    findings = check_config(
        config, connectors=CONNECTORS, zendesk_fields=FIELDS, intercom_contact_attributes=["plan"]
    )
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
            "error custom_fields.x",
            id="missing-field",
        ),
        pytest.param(
            {"custom_fields": {"x": {"zendesk_field_id": 300, "source": "contact.plan"}}},
            "error custom_fields.x",
            id="inactive",
        ),
        pytest.param(
            {
                "custom_fields": {
                    "x": {"zendesk_field_id": 100, "source": "contact.plan", "allowed": ["gold"]}
                }
            },
            "error custom_fields.x",
            id="unknown-option",
        ),
        pytest.param(
            {"custom_fields": {"x": {"zendesk_field_id": 100, "source": "contact.plan"}}},
            "warning custom_fields.x",
            id="no-allowed",
        ),
        pytest.param(
            {
                "custom_fields": {
                    "x": {"zendesk_field_id": 200, "source": "contact.custom_attributes.tier"}
                }
            },
            "error custom_fields.x",
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
