"""The org's Case fields and Contact fields, for ``deskstream config check`` (read-only:
``describe`` of Case and Contact, REST API Developer Guide "sObject Describe")."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from connectors.base.adapter import FieldInventory, InventoryField
from connectors.base.http import platform_http
from connectors.base.settings import ConnectorSettings
from connectors.salesforce.auth import token_failures_counter, token_source_for
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.settings import salesforce_settings

__all__ = ["read_inventory"]


async def read_inventory(settings: ConnectorSettings) -> FieldInventory:
    org = salesforce_settings("salesforce", settings)
    async with platform_http(httpx.Timeout(30.0)) as http:
        # A one-off check: a failed sign-in is its error, the counter is not exported.
        failures = token_failures_counter(CollectorRegistry())
        client = SalesforceClient(
            http, settings=org, tokens=token_source_for(org, http, failures=failures)
        )
        case, contact = await client.fields("Case"), await client.fields("Contact")
    return FieldInventory(
        case_fields=tuple(
            InventoryField(
                id=field.name,
                title=field.label,
                options=field.picklist_values or None,
            )
            for field in case.values()
        ),
        # The canonical contact's custom attributes are Contact fields there.
        contact_attributes=frozenset(contact),
    )
