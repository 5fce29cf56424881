"""How the sandbox describes an sObject: field types, rules, picklists, change event shape.

Everything else reads these specs (the objects themselves are in ``catalog``): validation on
create/update, ``describe``, the REST record shape, and the change event layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandboxes.salesforce.ids import KEY_PREFIXES

__all__ = [
    "FieldSpec",
    "SObjectSpec",
    "describe_field",
    "describe_object",
]

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "int": "xsd:int",
    "double": "xsd:double",
    "base64": "xsd:base64Binary",
}


@dataclass(frozen=True)
class FieldSpec:
    """One field as ``describe`` reports it, plus the rules the sandbox enforces."""

    name: str
    label: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    #: Must be present (and non-empty) on insert.
    required: bool = False
    picklist: tuple[str, ...] = ()
    picklist_default: str | None = None
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    custom: bool = False
    auto_number: bool = False
    calculated: bool = False
    #: Set by the platform, never by the caller (audit fields, Id, computed values).
    system: bool = False
    #: Compound field this one belongs to in change events (Contact ``Name``).
    compound: str | None = None
    #: Whether change events carry it (Id, IsDeleted, SystemModstamp, blobs do not).
    in_cdc: bool = True
    #: Length limits counted in UTF-8 bytes instead of characters.
    length_in_bytes: bool = False


@dataclass(frozen=True)
class SObjectSpec:
    name: str
    label: str
    label_plural: str
    fields: tuple[FieldSpec, ...]
    #: Avro record name of each compound field in change events.
    compound_types: dict[str, str] = field(default_factory=dict)

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    def field(self, name: str) -> FieldSpec | None:
        """The field named ``name``, matched case-insensitively as the API does."""
        lowered = name.lower()
        for spec in self.fields:
            if spec.name.lower() == lowered:
                return spec
        return None

    @property
    def field_names(self) -> list[str]:
        return [spec.name for spec in self.fields]


def describe_field(spec: FieldSpec) -> dict[str, Any]:
    """One entry of ``describe``'s ``fields`` array (the commonly read keys)."""
    text_like = spec.type in (
        "string",
        "textarea",
        "email",
        "phone",
        "picklist",
        "url",
        "id",
        "reference",
    )
    return {
        "name": spec.name,
        "label": spec.label,
        "type": spec.type,
        "soapType": _SOAP_TYPES.get(spec.type, "xsd:string"),
        "length": spec.length if text_like else 0,
        "byteLength": spec.length * 3 if text_like else 0,
        "digits": 9 if spec.type == "int" else 0,
        "precision": 0,
        "scale": 0,
        "nillable": spec.nillable,
        "createable": spec.createable and not spec.system,
        "updateable": spec.updateable and not spec.system,
        "custom": spec.custom,
        "externalId": spec.external_id,
        "idLookup": spec.external_id or spec.name == "Id" or spec.auto_number,
        "unique": False,
        "caseSensitive": False,
        "calculated": spec.calculated,
        "autoNumber": spec.auto_number,
        "defaultedOnCreate": spec.picklist_default is not None
        or spec.type == "boolean"
        or spec.name == "OwnerId"
        or spec.system,
        "defaultValue": spec.picklist_default if spec.type == "picklist" else None,
        "filterable": spec.type not in ("textarea", "base64"),
        "sortable": spec.type not in ("textarea", "base64"),
        "groupable": spec.type not in ("textarea", "base64", "datetime", "double"),
        "htmlFormatted": False,
        "nameField": spec.name in ("Name", "CaseNumber", "Title"),
        "restrictedPicklist": spec.restricted,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == spec.picklist_default,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in spec.picklist
        ],
        "referenceTo": list(spec.reference_to),
        "relationshipName": spec.relationship_name,
        "compoundFieldName": spec.compound,
    }


def describe_object(spec: SObjectSpec, version: str) -> dict[str, Any]:
    """``GET /sobjects/{type}/describe``."""
    base = f"/services/data/v{version}/sobjects/{spec.name}"
    return {
        "name": spec.name,
        "label": spec.label,
        "labelPlural": spec.label_plural,
        "keyPrefix": spec.key_prefix,
        "custom": False,
        "createable": spec.name != "ContentDocument",
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": spec.name in ("Case", "Contact"),
        "mergeable": spec.name in ("Case", "Contact"),
        "replicateable": True,
        "layoutable": True,
        "feedEnabled": spec.name in ("Case", "Contact"),
        "fields": [describe_field(f) for f in spec.fields],
        "childRelationships": [],
        "recordTypeInfos": [
            {
                "active": True,
                "available": True,
                "defaultRecordTypeMapping": True,
                "developerName": "Master",
                "master": True,
                "name": "Master",
                "recordTypeId": "012000000000000AAA",
                "urls": {"layout": f"{base}/describe/layouts/012000000000000AAA"},
            }
        ],
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }
