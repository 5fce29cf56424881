"""Intercom (REST API 2.14): contacts and conversations with their parts, signed
``notification_event`` webhooks. ``connectors.intercom.sandbox`` is the offline emulator."""
