"""The package's public surface and its place in the sandbox registry."""

from __future__ import annotations

from sandboxes import zendesk_conversations as sandbox
from sandboxes.base.registry import load_sandbox_class
from sandboxes.base.server import PlatformSandbox


def test_public_api() -> None:
    assert sorted(sandbox.__all__) == [
        "AGENT_ID_METADATA_KEY",
        "SUNSHINE_RETRY_POLICY",
        "SunshineSandbox",
        "SunshineSandboxConfig",
    ]
    assert issubclass(sandbox.SunshineSandbox, PlatformSandbox)


def test_the_registry_resolves_the_platform_to_this_sandbox() -> None:
    cls = load_sandbox_class("zendesk_conversations")
    assert cls is sandbox.SunshineSandbox
    assert cls.webhook_retry_policy is sandbox.SUNSHINE_RETRY_POLICY


def test_create_builds_a_dispatcher_with_the_sunshine_retry_policy() -> None:
    built = sandbox.SunshineSandbox.create(seed=3, webhook_target="http://127.0.0.1:9/{platform}")
    hooks = built.context.webhooks
    assert hooks is not None
    assert hooks.target_url == "http://127.0.0.1:9/zendesk_conversations"
    assert hooks.retry_policy is sandbox.SUNSHINE_RETRY_POLICY
