"""The org's records and the DML rules that guard them.

Every write returns the :class:`Change` list it caused, so the caller can publish the change
events of one transaction together. ``checkpoint``/``restore`` give sObject Collections its
``allOrNone`` rollback.

A deleted record goes to the recycle bin with ``IsDeleted`` true and a new ``SystemModstamp``,
where QueryAll still finds it ("QueryAll", REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm:
"QueryAll returns records that are soft deleted due to a merge or delete"). That a delete moves
``SystemModstamp`` is UNVERIFIED (query: "SystemModstamp updated when record deleted
queryAll IsDeleted"); replication clients rely on it. The bin is never emptied here (the
platform purges it after 15 days).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.fields import DmlError, coerce_value
from sandboxes.salesforce.ids import KEY_PREFIXES, IdFactory, normalize_id
from sandboxes.salesforce.objects import SObjectSpec

__all__ = ["Change", "RecordStore", "WriteContext"]

Record = dict[str, Any]

_CLOSED_STATUSES = frozenset({"Closed"})
_FILE_TYPES = {
    "pdf": "PDF",
    "png": "PNG",
    "jpg": "JPG",
    "jpeg": "JPG",
    "gif": "GIF",
    "txt": "TEXT",
    "csv": "CSV",
    "doc": "WORD",
    "docx": "WORD_X",
    "xls": "EXCEL",
    "xlsx": "EXCEL_X",
    "zip": "ZIP",
    "json": "JSON",
    "html": "HTML",
}


@dataclass(frozen=True)
class WriteContext:
    """Who writes, and when (one transaction)."""

    user_id: str
    now: datetime


@dataclass(frozen=True)
class Change:
    """One record change inside a transaction, as change data capture sees it."""

    entity: str
    record_id: str
    change_type: str
    #: Field API names whose value changed (updates only), system fields included.
    changed: tuple[str, ...]
    #: Changed fields that are now null.
    nulled: tuple[str, ...]
    #: The record after the change (before it, for a delete).
    record: Record
    #: Values of the changed fields before an update: long text fields are sent as a diff of
    #: them (see ``cdc_diff``).
    previous: Record = dataclasses.field(default_factory=dict)


class RecordStore:
    """Records by object and id, plus deleted ids and ContentVersion blobs."""

    def __init__(self, ids: IdFactory) -> None:
        self._ids = ids
        self.records: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        self.deleted: dict[str, str] = {}
        #: Deleted records as QueryAll returns them, by id.
        self.recycle_bin: dict[str, Record] = {}
        self.blobs: dict[str, bytes] = {}
        self._case_number = 1000

    # -- reading ------------------------------------------------------------------------

    def get(self, sobject: str, record_id: str) -> Record | None:
        return self.records[sobject].get(record_id)

    def find_by(self, sobject: str, field: str, value: str) -> list[Record]:
        """Records whose ``field`` equals ``value`` (external ids compare case-insensitively)."""
        lowered = value.lower()
        return [
            record
            for record in self.records[sobject].values()
            if isinstance(record.get(field), str) and record[field].lower() == lowered
        ]

    def exists(self, record_id: str) -> bool:
        return any(record_id in records for records in self.records.values())

    def seed(self, sobject: str, record_id: str, values: Record, now: datetime) -> None:
        """A record the org has from the start (its users and queues), outside any
        transaction: nothing is published for it."""
        spec = OBJECTS[sobject]
        record: Record = {f.name: None for f in spec.fields}
        for field in spec.fields:
            if field.picklist_default is not None:
                record[field.name] = field.picklist_default
            elif field.type == "boolean":
                record[field.name] = False
        record.update(values, Id=record_id)
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if name in record:
                record[name] = now
        if sobject == "User":
            self._derive_name(record)
        self.records[sobject][record_id] = record

    # -- rollback (allOrNone) -------------------------------------------------------------

    def checkpoint(self) -> tuple[Any, ...]:
        return (
            {
                name: {record_id: dict(record) for record_id, record in records.items()}
                for name, records in self.records.items()
            },
            dict(self.deleted),
            dict(self.recycle_bin),
            dict(self.blobs),
            self._case_number,
        )

    def restore(self, point: tuple[Any, ...]) -> None:
        self.records, self.deleted, self.recycle_bin, self.blobs, self._case_number = point

    # -- writing --------------------------------------------------------------------------

    def _values(self, spec: SObjectSpec, values: dict[str, Any], *, insert: bool) -> Record:
        coerced: Record = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            field = spec.field(name)
            if field is None:
                raise DmlError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
                )
            allowed = field.createable if insert else field.updateable
            if field.system or not allowed:
                raise DmlError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {field.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [field.name],
                )
            coerced[field.name] = coerce_value(spec, field, value)
        for name, stored in coerced.items():
            field = spec.field(name)
            if field is not None and field.type == "reference" and stored is not None:
                self._check_reference(field.label, name, stored, field.reference_to)
        return coerced

    def _check_reference(self, label: str, name: str, record_id: str, to: tuple[str, ...]) -> None:
        prefixes = {KEY_PREFIXES[target] for target in to}
        if record_id[:3] not in prefixes:
            raise DmlError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{label}: id value of incorrect type: {record_id}",
                [name],
            )
        # Accounts are not stored by the sandbox: any well-formed Account id is accepted.
        if record_id[:3] == KEY_PREFIXES["Account"]:
            return
        if record_id in self.deleted:
            raise DmlError("ENTITY_IS_DELETED", "entity is deleted", [name])
        if not self.exists(record_id):
            raise DmlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])

    def insert(
        self, sobject: str, values: dict[str, Any], ctx: WriteContext
    ) -> tuple[str, list[Change]]:
        spec = OBJECTS[sobject]
        record = self._values(spec, values, insert=True)
        for field in spec.fields:
            if field.required and record.get(field.name) in (None, ""):
                raise DmlError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{field.name}]",
                    [field.name],
                )
            if field.name not in record:
                if field.picklist_default is not None:
                    record[field.name] = field.picklist_default
                elif field.type == "boolean":
                    record[field.name] = False
                else:
                    record[field.name] = None
        record_id = self._ids.for_object(sobject)
        record.update(Id=record_id, IsDeleted=False)
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if spec.field(name):
                record[name] = ctx.now
        for name in ("CreatedById", "LastModifiedById"):
            if spec.field(name):
                record[name] = ctx.user_id
        if spec.field("OwnerId") and record.get("OwnerId") is None:
            record["OwnerId"] = ctx.user_id
        extra: list[Change] = []
        if sobject == "Case":
            self._check_owner(record)
            self._case_number += 1
            record["CaseNumber"] = f"{self._case_number:08d}"
            self._derive_case(record, None, ctx)
        elif sobject in ("Contact", "User"):
            self._derive_name(record)
        elif sobject == "ContentVersion":
            extra = self._insert_version(record, ctx)
        elif sobject == "ContentDocumentLink":
            self._check_link(record)
        self.records[sobject][record_id] = record
        change = Change(sobject, record_id, "CREATE", (), (), dict(record))
        return record_id, [change, *extra]

    def update(
        self, sobject: str, record_id: str, values: dict[str, Any], ctx: WriteContext
    ) -> list[Change]:
        spec = OBJECTS[sobject]
        current = self.records[sobject].get(record_id)
        if current is None:
            raise self.missing(record_id)
        body = dict(values)
        given_id = body.pop("Id", None)
        if given_id is not None and normalize_id(str(given_id)) != record_id:
            raise DmlError("INVALID_ID_FIELD", "Record ID: id value of incorrect type", ["Id"])
        coerced = self._values(spec, body, insert=False)
        before = dict(current)
        updated = {**current, **coerced}
        if spec.field("LastModifiedDate"):
            updated.update(LastModifiedDate=ctx.now, LastModifiedById=ctx.user_id)
        updated["SystemModstamp"] = ctx.now
        if sobject == "Case":
            if "OwnerId" in coerced:
                self._check_owner(updated)
            self._derive_case(updated, before, ctx)
        elif sobject in ("Contact", "User"):
            if updated.get("LastName") in (None, ""):
                raise DmlError(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [LastName]",
                    ["LastName"],
                )
            self._derive_name(updated)
        elif sobject == "ContentVersion" and "Title" in coerced:
            document = self.records["ContentDocument"].get(updated["ContentDocumentId"])
            if document is not None and updated.get("IsLatest"):
                document["Title"] = updated["Title"]
        self.records[sobject][record_id] = updated
        # Every save stamps LastModifiedDate, so change events always list it, even when the
        # clock has not moved since the previous save.
        changed = tuple(
            f.name
            for f in spec.fields
            if f.in_cdc
            and f.name in updated
            and (f.name == "LastModifiedDate" or updated.get(f.name) != before.get(f.name))
        )
        nulled = tuple(name for name in changed if updated.get(name) is None)
        previous = {name: before.get(name) for name in changed}
        return [Change(sobject, record_id, "UPDATE", changed, nulled, dict(updated), previous)]

    def delete(self, sobject: str, record_id: str, ctx: WriteContext) -> list[Change]:
        record = self.records[sobject].pop(record_id, None)
        if record is None:
            raise self.missing(record_id)
        if sobject == "ContentVersion":
            self.records[sobject][record_id] = record
            raise DmlError(
                "DELETE_FAILED",
                "Cannot delete a ContentVersion: delete its ContentDocument instead",
            )
        self.deleted[record_id] = sobject
        self._recycle(record, ctx)
        changes = [Change(sobject, record_id, "DELETE", (), (), record)]
        # Master-detail children go with their parent, without change events of their own.
        if sobject == "Case":
            for child_id, child in list(self.records["CaseComment"].items()):
                if child["ParentId"] == record_id:
                    del self.records["CaseComment"][child_id]
                    self.deleted[child_id] = "CaseComment"
                    self._recycle(child, ctx)
        if sobject == "ContentDocument":
            for kind in ("ContentVersion", "ContentDocumentLink"):
                for child_id, child in list(self.records[kind].items()):
                    if child["ContentDocumentId"] == record_id:
                        del self.records[kind][child_id]
                        self.blobs.pop(child_id, None)
                        self.deleted[child_id] = kind
        for link_id, link in list(self.records["ContentDocumentLink"].items()):
            if link["LinkedEntityId"] == record_id:
                del self.records["ContentDocumentLink"][link_id]
        return changes

    def _recycle(self, record: Record, ctx: WriteContext) -> None:
        self.recycle_bin[record["Id"]] = {**record, "IsDeleted": True, "SystemModstamp": ctx.now}

    def missing(self, record_id: str) -> DmlError:
        if record_id in self.deleted:
            return DmlError("ENTITY_IS_DELETED", "entity is deleted", http_status=404)
        return DmlError("NOT_FOUND", "The requested resource does not exist", http_status=404)

    # -- object rules ----------------------------------------------------------------------

    @staticmethod
    def _derive_case(record: Record, before: Record | None, ctx: WriteContext) -> None:
        closed = record.get("Status") in _CLOSED_STATUSES
        record["IsClosed"] = closed
        was_closed = bool(before and before.get("IsClosed"))
        if closed and not was_closed:
            record["ClosedDate"] = ctx.now
        elif not closed:
            record["ClosedDate"] = None

    def _check_owner(self, record: Record) -> None:
        """A Case's owner is an active user or a queue ("INACTIVE_OWNER_OR_USER"; a Group
        other than a queue cannot own records)."""
        owner_id = record.get("OwnerId")
        user = self.records["User"].get(owner_id) if owner_id else None
        group = self.records["Group"].get(owner_id) if owner_id else None
        if user is not None and not user.get("IsActive"):
            raise DmlError(
                "INACTIVE_OWNER_OR_USER", "operation performed with inactive user as owner", []
            )
        if group is not None and group.get("Type") != "Queue":
            raise DmlError(
                "FIELD_INTEGRITY_EXCEPTION", "Owner ID: id value of incorrect type", ["OwnerId"]
            )

    @staticmethod
    def _derive_name(record: Record) -> None:
        parts = [record.get("FirstName"), record.get("LastName")]
        record["Name"] = " ".join(str(p) for p in parts if p)

    def _insert_version(self, record: Record, ctx: WriteContext) -> list[Change]:
        data = record.pop("VersionData")
        assert isinstance(data, bytes)
        path = PurePosixPath(str(record["PathOnClient"]).replace("\\", "/"))
        extension = path.suffix.lstrip(".").lower()
        record.update(
            ContentSize=len(data),
            Checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            FileExtension=extension or None,
            FileType=_FILE_TYPES.get(extension, "UNKNOWN"),
            VersionData=None,
        )
        if not record.get("Title"):
            record["Title"] = path.stem or path.name
        self.blobs[record["Id"]] = data
        document_id = record.get("ContentDocumentId")
        location = record.get("FirstPublishLocationId")
        if document_id is not None:
            if location is not None:
                raise DmlError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "You cannot set FirstPublishLocationId on a new version of a document",
                    ["FirstPublishLocationId"],
                )
            document = self.records["ContentDocument"].get(document_id)
            if document is None:
                raise DmlError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    ["ContentDocumentId"],
                )
            versions = [
                v
                for v in self.records["ContentVersion"].values()
                if v["ContentDocumentId"] == document_id
            ]
            for version in versions:
                version["IsLatest"] = False
            record.update(IsLatest=True, VersionNumber=str(len(versions) + 1))
        else:
            document_id = self._ids.for_object("ContentDocument")
            record.update(ContentDocumentId=document_id, IsLatest=True, VersionNumber="1")
            self.records["ContentDocument"][document_id] = {
                "Id": document_id,
                "IsDeleted": False,
                "OwnerId": record["OwnerId"],
                "CreatedDate": ctx.now,
                "CreatedById": ctx.user_id,
                "LastModifiedDate": ctx.now,
                "LastModifiedById": ctx.user_id,
                "SystemModstamp": ctx.now,
            }
        self.records["ContentDocument"][document_id].update(
            Title=record["Title"],
            LatestPublishedVersionId=record["Id"],
            FileType=record["FileType"],
            FileExtension=record["FileExtension"],
            ContentSize=record["ContentSize"],
        )
        if location is not None:
            link_id = self._ids.for_object("ContentDocumentLink")
            self.records["ContentDocumentLink"][link_id] = {
                "Id": link_id,
                "IsDeleted": False,
                "LinkedEntityId": location,
                "ContentDocumentId": document_id,
                "ShareType": "I",
                "Visibility": "AllUsers",
                "SystemModstamp": ctx.now,
            }
        return []

    def _check_link(self, record: Record) -> None:
        for link in self.records["ContentDocumentLink"].values():
            if (link["ContentDocumentId"], link["LinkedEntityId"]) == (
                record["ContentDocumentId"],
                record["LinkedEntityId"],
            ):
                raise DmlError(
                    "DUPLICATE_VALUE",
                    f"Document with ID: {record['ContentDocumentId']} is already linked with "
                    f"the entity with ID: {record['LinkedEntityId']}",
                    ["LinkedEntityId"],
                )
