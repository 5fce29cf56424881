"""The connector's tests run against the real Intercom sandbox: its fixtures live with the
sandbox's own tests (``tests/sandboxes/intercom/conftest.py``) and are shared from there."""

from __future__ import annotations

from tests.sandboxes.intercom.conftest import clock, intercom, receiver

__all__ = ["clock", "intercom", "receiver"]
