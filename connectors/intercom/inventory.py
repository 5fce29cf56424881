"""The Intercom workspace's contact attributes, for ``deskstream config check`` (read-only:
List all data attributes, model ``contact``)."""

from __future__ import annotations

from connectors.base.adapter import FieldInventory
from connectors.base.settings import ConnectorSettings
from connectors.intercom.client import IntercomClient

__all__ = ["read_inventory"]


async def read_inventory(settings: ConnectorSettings) -> FieldInventory:
    client = IntercomClient.from_settings(settings)  # its own client, on the connector's URL
    try:
        attributes = await client.data_attributes("contact")
    finally:
        await client.aclose()
    return FieldInventory(contact_attributes=frozenset(a.name for a in attributes))
