"""The Zendesk account's custom ticket fields, for ``deskstream config check`` (read-only:
List Ticket Fields)."""

from __future__ import annotations

import httpx

from connectors.base.adapter import FieldInventory, InventoryField
from connectors.base.http import platform_http
from connectors.base.settings import ConnectorSettings
from connectors.zendesk.client import ZendeskClient

__all__ = ["read_inventory"]


async def read_inventory(settings: ConnectorSettings) -> FieldInventory:
    async with platform_http(httpx.Timeout(30.0)) as http:
        fields = await ZendeskClient(http, settings=settings).ticket_fields()
    return FieldInventory(
        case_fields=tuple(
            InventoryField(
                id=str(f.id),
                title=f.title,
                active=f.active,
                options=tuple(str(o.get("value")) for o in f.custom_field_options) or None,
            )
            for f in fields
        )
    )
