"""Check the sync rules against the platforms' live field inventories.

A rules file can be valid YAML and still wrong for the account it runs against: a Zendesk
field id that was deleted, an allowed value the drop-down does not have, an Intercom
attribute nobody created. Each would otherwise surface as refused writes in production.
Pure: the inventories are passed in (``deskstream config check`` fetches them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from streams.config import SyncConfig

__all__ = ["Finding", "check_config"]


@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["error", "warning"]
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level:7} {self.where}: {self.message}"


def _options(field: Mapping[str, Any]) -> list[str]:
    return [str(o.get("value")) for o in field.get("custom_field_options") or []]


def _intercom_attribute(source: str) -> str | None:
    """The Intercom contact attribute a mapping reads, if it reads one."""
    if source.startswith("contact.custom_attributes."):
        return source.split(".", 2)[2]
    if source == "contact.plan":
        return "plan"  # the Intercom normaliser reads the plan from this custom attribute
    return None


def check_config(
    config: SyncConfig,
    *,
    connectors: Mapping[str, str],
    zendesk_fields: Sequence[Mapping[str, Any]],
    intercom_contact_attributes: Iterable[str],
) -> list[Finding]:
    """``connectors``: configured connector id → platform."""
    findings: list[Finding] = []
    for role, connector_id in (
        ("intercom", config.connectors.intercom),
        ("zendesk", config.connectors.zendesk),
    ):
        platform = connectors.get(connector_id)
        if platform != role:
            what = "is not configured" if platform is None else f"is a {platform} connector"
            findings.append(
                Finding(
                    "error",
                    f"connectors.{role}",
                    f"{connector_id!r} {what}; set "
                    f"DESKSTREAM_CONNECTORS__{connector_id}__PLATFORM={role}",
                )
            )
    by_id = {int(f["id"]): f for f in zendesk_fields}
    attributes = set(intercom_contact_attributes)
    for name, spec in config.custom_fields.items():
        where = f"custom_fields.{name}"
        field = by_id.get(spec.zendesk_field_id)
        if field is None:
            findings.append(
                Finding("error", where, f"Zendesk has no ticket field {spec.zendesk_field_id}")
            )
        elif not field.get("active", True):
            findings.append(
                Finding("error", where, f"Zendesk field {spec.zendesk_field_id} is inactive")
            )
        elif _options(field):
            options = _options(field)
            if spec.allowed is None:
                findings.append(
                    Finding(
                        "warning",
                        where,
                        f"field {spec.zendesk_field_id} is a drop-down; list `allowed` "
                        f"(its values: {', '.join(options)}) so wrong values are refused here",
                    )
                )
            else:
                unknown = [v for v in spec.allowed if v not in options]
                if unknown:
                    findings.append(
                        Finding(
                            "error",
                            where,
                            f"allowed values {', '.join(unknown)} are not options of field "
                            f"{spec.zendesk_field_id} ({', '.join(options)})",
                        )
                    )
        attribute = _intercom_attribute(spec.source)
        if attribute is not None and attribute not in attributes:
            findings.append(
                Finding("error", where, f"Intercom contacts have no attribute {attribute!r}")
            )
    for field_name, direction in config.profile_fields.items():
        if direction == "none" or not field_name.startswith("custom_attributes."):
            continue
        attribute = field_name.split(".", 1)[1]
        if attribute not in attributes:
            findings.append(
                Finding(
                    "error",
                    f"profile_fields.{field_name}",
                    f"Intercom contacts have no attribute {attribute!r}; create it in Intercom "
                    "(Settings → Data → People) or remove the mapping",
                )
            )
    return findings
