"""The CDC subscribers run against the real Salesforce sandbox: its fixtures live with the
sandbox's own tests (``tests/sandboxes/salesforce/conftest.py``) and are shared from there."""

from __future__ import annotations

from tests.sandboxes.salesforce.conftest import certificate_pem, env, rsa_key, start_sandbox

__all__ = ["certificate_pem", "env", "rsa_key", "start_sandbox"]
