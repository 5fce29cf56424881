"""The connector's tests run against the real Zendesk sandbox: its fixtures live with the
sandbox's own tests (``tests/sandboxes/zendesk/conftest.py``) and are shared from there."""

from __future__ import annotations

from tests.sandboxes.zendesk.conftest import clock, receiver, zendesk, zendesk_hooks

__all__ = ["clock", "receiver", "zendesk", "zendesk_hooks"]
