"""The shapes the Salesforce client returns: save results (one per record, errors kept), a
field of the describe inventory, a page of a SOQL query.

Sources: SaveResult/UpsertResult ("UpsertResult", SOAP API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_upsert_upsertresult.htm:
``id``, ``success``, ``errors``, ``created``); collection errors are
``{"statusCode","message","fields"}`` ("sObject Collections", REST API Developer Guide);
describe fields ("sObject Describe", REST API Developer Guide); query pages ``totalSize``,
``done``, ``records``, ``nextRecordsUrl`` ("Query", REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FieldInfo", "QueryPage", "RecordError", "SaveResult"]


@dataclass(frozen=True, slots=True)
class RecordError:
    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> RecordError:
        if not isinstance(raw, dict):
            return cls("UNKNOWN", str(raw))
        code = raw.get("statusCode") or raw.get("errorCode") or "UNKNOWN"
        names = raw.get("fields") or ()
        return cls(str(code), str(raw.get("message", "")), tuple(str(n) for n in names))


@dataclass(frozen=True, slots=True)
class SaveResult:
    """One record's outcome. ``created`` is None where the answer does not say (create,
    update); ``id`` is None for a record that failed to be created."""

    id: str | None
    success: bool
    errors: tuple[RecordError, ...] = field(default=())
    created: bool | None = None

    @classmethod
    def parse(cls, raw: Any) -> SaveResult:
        if not isinstance(raw, dict):
            return cls(None, False, (RecordError("UNKNOWN", f"unexpected result {raw!r}"),))
        errors = tuple(RecordError.parse(e) for e in raw.get("errors") or ())
        record_id = raw.get("id")
        created = raw.get("created")
        return cls(
            str(record_id) if record_id else None,
            bool(raw.get("success")),
            errors,
            created if isinstance(created, bool) else None,
        )


class FieldInfo(BaseModel):
    """One field of ``describe``: what ``deskstream config check`` and the sink need."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    name: str
    label: str = ""
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = False
    updateable: bool = False
    external_id: bool = Field(default=False, alias="externalId")
    restricted_picklist: bool = Field(default=False, alias="restrictedPicklist")
    picklist_values: tuple[str, ...] = Field(default=(), alias="picklistValues")
    reference_to: tuple[str, ...] = Field(default=(), alias="referenceTo")

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FieldInfo:
        values = tuple(
            str(v["value"])
            for v in raw.get("picklistValues") or ()
            if isinstance(v, dict) and v.get("active", True) and "value" in v
        )
        return cls.model_validate({**raw, "picklistValues": values})


@dataclass(frozen=True, slots=True)
class QueryPage:
    records: list[dict[str, Any]]
    total_size: int
    done: bool
    #: the path of the next page (``/services/data/vXX.X/query/01g...-2000``), None at the end
    next_records_url: str | None
