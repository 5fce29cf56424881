"""The Salesforce sandbox fixtures (a started org and an httpx client with a token) for the
connector's integration tests: the same ones the sandbox's own tests use."""

from __future__ import annotations

from tests.sandboxes.salesforce.conftest import certificate_pem, env, rsa_key, start_sandbox

__all__ = ["certificate_pem", "env", "rsa_key", "start_sandbox"]
