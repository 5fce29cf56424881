"""Which sandbox class serves which platform, resolved lazily by name.

Entries are ``"module:Class"`` strings so the CLI can list every platform without importing
them, and a platform whose sandbox is not written yet (or fails to import) is reported as
unavailable instead of taking the whole command down. If ``Class`` is missing from the module,
the single :class:`PlatformSandbox` subclass there whose ``platform`` matches is used.
"""

from __future__ import annotations

import importlib
import inspect

from sandboxes.base.server import PlatformSandbox

__all__ = ["DEFAULT_PORT_OFFSETS", "SANDBOXES", "SandboxUnavailableError", "load_sandbox_class"]

SANDBOXES: dict[str, str] = {
    "zendesk": "sandboxes.zendesk:ZendeskSandbox",
    "zendesk_conversations": "sandboxes.zendesk_conversations:SunshineSandbox",
    "intercom": "sandboxes.intercom:IntercomSandbox",
    "salesforce": "sandboxes.salesforce:SalesforceSandbox",
}

#: ``--port-base`` + offset is each platform's default port (8100, 8101, ...).
DEFAULT_PORT_OFFSETS: dict[str, int] = {name: i for i, name in enumerate(SANDBOXES)}


class SandboxUnavailableError(LookupError):
    """The platform has no sandbox, or its module cannot be imported."""


def load_sandbox_class(platform: str) -> type[PlatformSandbox]:
    """Import and return the sandbox class registered for ``platform``."""
    try:
        target = SANDBOXES[platform]
    except KeyError:
        known = ", ".join(SANDBOXES)
        raise SandboxUnavailableError(f"no sandbox for {platform!r}; known: {known}") from None
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SandboxUnavailableError(
            f"the {platform} sandbox ({module_name}) cannot be imported: {exc}"
        ) from exc
    candidate = getattr(module, attribute, None)
    if _is_sandbox_for(candidate, platform):
        assert isinstance(candidate, type)
        return candidate
    matches = [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, PlatformSandbox) and _is_sandbox_for(obj, platform)
    ]
    if len(matches) == 1:
        return matches[0]
    raise SandboxUnavailableError(
        f"{module_name} has no PlatformSandbox subclass for platform {platform!r}"
    )


def _is_sandbox_for(obj: object, platform: str) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, PlatformSandbox)
        and not inspect.isabstract(obj)
        and getattr(obj, "platform", None) == platform
    )
