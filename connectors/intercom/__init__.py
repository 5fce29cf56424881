"""Intercom (REST API 2.14): contacts and conversations with their parts, signed
``notification_event`` webhooks. ``sandboxes.intercom`` is the offline emulator."""
