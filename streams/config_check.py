"""Check the sync rules against the platforms' live field inventories.

A rules file can be valid YAML and still wrong for the accounts it runs against: a custom
field id that was deleted, an allowed value the drop-down does not have, a contact attribute
nobody created. Each would otherwise surface as refused writes in production. Pure: the
inventories (``connectors.base.adapter.FieldInventory``) are passed in; ``deskstream config
check`` reads them from each platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from connectors.base.adapter import FieldInventory
from streams.config import CustomField, Route, SyncConfig
from streams.mapping import adapter

__all__ = ["Finding", "check_config"]


@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["error", "warning"]
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level:7} {self.where}: {self.message}"


def _attribute(platform: str, source: str) -> str | None:
    """The contact attribute on ``platform`` a mapping reads, if it reads one."""
    if source.startswith("contact.custom_attributes."):
        return source.split(".", 2)[2]
    if source == "contact.plan":
        return adapter(platform).plan_attribute
    return None


def _field_findings(
    route: Route, where: str, spec: CustomField, inventory: FieldInventory
) -> list[Finding]:
    target = route.target
    by_id = {field.id: field for field in inventory.case_fields}
    field = by_id.get(spec.field)
    noun, name = adapter(target).case_noun, adapter(target).name
    if field is None:
        return [Finding("error", where, f"{name} has no {noun} field {spec.field}")]
    if not field.active:
        return [Finding("error", where, f"{name} field {spec.field} is inactive")]
    options = list(field.options or ())
    if not options:
        return []
    if spec.allowed is None:
        return [
            Finding(
                "warning",
                where,
                f"field {spec.field} is a drop-down; list `allowed` (its values: "
                f"{', '.join(options)}) so wrong values are refused here",
            )
        ]
    unknown = [v for v in spec.allowed if v not in options]
    if unknown:
        return [
            Finding(
                "error",
                where,
                f"allowed values {', '.join(unknown)} are not options of field {spec.field} "
                f"({', '.join(options)})",
            )
        ]
    return []


def check_config(
    config: SyncConfig,
    *,
    connectors: Mapping[str, str],
    inventories: Mapping[str, FieldInventory],
) -> list[Finding]:
    """``connectors``: configured connector id → platform; ``inventories``: platform → what
    its account holds (a platform left out is not checked)."""
    findings: list[Finding] = []
    for platform, connector_id in config.connectors.items():
        actual = connectors.get(connector_id)
        if actual != platform:
            what = "is not configured" if actual is None else f"is a {actual} connector"
            findings.append(
                Finding(
                    "error",
                    f"connectors.{platform}",
                    f"{connector_id!r} {what}; set "
                    f"DESKSTREAM_CONNECTORS__{connector_id}__PLATFORM={platform}",
                )
            )
    for route in config.routes:
        for name, spec in route.create.custom_fields.items():
            where = f"routes[{route.source}->{route.target}].create.custom_fields.{name}"
            target = inventories.get(route.target)
            if target is not None and target.read:
                findings += _field_findings(route, where, spec, target)
            source = inventories.get(route.source)
            attribute = _attribute(route.source, spec.source)
            known = source.contact_attributes if source is not None else None
            if attribute is not None and known is not None and attribute not in known:
                findings.append(
                    Finding(
                        "error",
                        where,
                        f"{adapter(route.source).name} contacts have no attribute {attribute!r}",
                    )
                )
    for field_name, direction in config.profile_fields.items():
        if direction == "none" or not field_name.startswith("custom_attributes."):
            continue
        attribute = field_name.split(".", 1)[1]
        for platform in config.platforms:
            inventory = inventories.get(platform)
            known = inventory.contact_attributes if inventory is not None else None
            if known is not None and attribute not in known:
                findings.append(
                    Finding(
                        "error",
                        f"profile_fields.{field_name}",
                        f"{adapter(platform).name} contacts have no attribute {attribute!r}; "
                        "create it there or remove the mapping",
                    )
                )
    return findings
