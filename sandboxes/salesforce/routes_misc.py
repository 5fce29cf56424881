"""sObject Collections (``/composite/sobjects``) and the small discovery resources.

Collections process up to 200 records in one call and one transaction. With ``allOrNone``
any failure rolls every record back (the others report ``ALL_OR_NONE_OPERATION_ROLLED_BACK``);
without it each record succeeds or fails on its own. Results come back in request order as
``{"id", "success", "errors": [{"statusCode", "message", "fields"}]}``.

Upsert (``PATCH /composite/sobjects/{SobjectName}/{ExternalIdFieldName}``) follows "Upsert
Records Using sObject Collections" (REST API Developer Guide):
https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html
API 46.0 and later; up to 200 records, only of the URI's type, each with ``attributes.type``;
external ids only, no record ids; processed and answered in request order as UpsertResults
(``{"id", "success", "errors", "created"}``, "UpsertResult" in the SOAP API guide). Several
matches for one value fail that record with ``DUPLICATE_EXTERNAL_ID`` (the upsert() status code
of the SOAP API's StatusCode list). UNVERIFIED (searched "sObject Collections upsert error
record missing external id value", "upsert collection wrong sObject type error"): the codes for
a record of another type (``INVALID_TYPE``), with an ``Id`` (``INVALID_FIELD``), or without the
external id value (``MISSING_ARGUMENT``), and the answer for an unknown field (404, as the
single-record upsert).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.fields import DmlError
from sandboxes.salesforce.ids import normalize_id
from sandboxes.salesforce.objects import SObjectSpec
from sandboxes.salesforce.rest_common import (
    NOT_FOUND,
    ApiError,
    change_origin,
    read_json,
    record_json,
    rest_context,
    sobject_spec,
)
from sandboxes.salesforce.state import Org
from sandboxes.salesforce.store import Change

__all__ = ["MiscRoutes", "release_label"]

logger = logging.getLogger(__name__)

_DATA = "/services/data/{version:v\\d+\\.\\d}"
COLLECTION_LIMIT = 200
#: "This request is available in API version 46 and later."
_COLLECTION_UPSERT_SINCE = 46.0
_Operation = Callable[[Any, str], tuple[str, list[Change]]]
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}


def release_label(version: float) -> str:
    """Salesforce's release name for an API version (59.0 is Winter '24)."""
    offset = round(version) - 59
    season = ("Winter", "Spring", "Summer")[offset % 3]
    return f"{season} '{24 + offset // 3:02d}"


class MiscRoutes:
    def __init__(self, org: Org) -> None:
        self.org = org

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/services/data", self.versions),
            web.get("/services/data/", self.versions),
            web.get(_DATA, self.resources),
            web.get(f"{_DATA}/", self.resources),
            web.get(f"{_DATA}/limits", self.limits),
            web.get(f"{_DATA}/limits/", self.limits),
            web.post(f"{_DATA}/composite/sobjects", self.collection_create),
            web.patch(f"{_DATA}/composite/sobjects", self.collection_update),
            web.patch(f"{_DATA}/composite/sobjects/{{sobject}}/{{field}}", self.collection_upsert),
            web.delete(f"{_DATA}/composite/sobjects", self.collection_delete),
            web.get(f"{_DATA}/composite/sobjects/{{sobject}}", self.collection_get),
        ]

    # -- discovery ------------------------------------------------------------------------

    async def versions(self, request: web.Request) -> web.Response:
        config = self.org.config
        low, high = int(config.min_api_version), int(config.max_api_version)
        return web.json_response(
            [
                {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                for v in range(low, high + 1)
            ]
        )

    async def resources(self, request: web.Request) -> web.Response:
        version = rest_context(request).version
        base = f"/services/data/v{version}"
        return web.json_response(
            {
                "sobjects": f"{base}/sobjects",
                "limits": f"{base}/limits",
                "composite": f"{base}/composite",
            }
        )

    async def limits(self, request: web.Request) -> web.Response:
        usage = self.org.usage
        return web.json_response(
            {"DailyApiRequests": {"Max": usage.limit, "Remaining": usage.limit - usage.used}}
        )

    # -- collections ----------------------------------------------------------------------

    async def _records(self, request: web.Request) -> tuple[list[Any], bool]:
        body = await read_json(request, self.org.config.max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", 'Expected {"records": [...]} in the body')
        records = body["records"]
        self._check_size(len(records))
        return records, bool(body.get("allOrNone", False))

    @staticmethod
    def _check_size(count: int) -> None:
        if count > COLLECTION_LIMIT:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records "
                "into this call",
            )

    async def collection_create(self, request: web.Request) -> web.Response:
        records, all_or_none = await self._records(request)

        def insert(item: Any, ctx_user: str) -> tuple[str, list[Change]]:
            spec = self._item_spec(item)
            values = {k: v for k, v in item.items() if k != "attributes"}
            if any(k.lower() == "id" for k in values):
                raise DmlError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            return self.org.store.insert(spec.name, values, self.org.write_context(ctx_user))

        return self._run(request, records, all_or_none, insert)

    async def collection_update(self, request: web.Request) -> web.Response:
        records, all_or_none = await self._records(request)

        def update(item: Any, ctx_user: str) -> tuple[str, list[Change]]:
            spec = self._item_spec(item)
            values = {k: v for k, v in item.items() if k != "attributes"}
            record_id = normalize_id(str(values.get("Id") or ""))
            if record_id is None:
                raise DmlError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            if self.org.store.get(spec.name, record_id) is None:
                error = self.org.store.missing(record_id)
                if error.status_code == "NOT_FOUND":
                    raise DmlError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                raise error
            values.pop("Id")
            changes = self.org.store.update(
                spec.name, record_id, values, self.org.write_context(ctx_user)
            )
            return record_id, changes

        return self._run(request, records, all_or_none, update)

    async def collection_upsert(self, request: web.Request) -> web.Response:
        if float(rest_context(request).version) < _COLLECTION_UPSERT_SINCE:
            raise ApiError(404, *NOT_FOUND)
        spec = sobject_spec(request.match_info["sobject"])
        name = request.match_info["field"]
        field = spec.field(name)
        if field is None or not field.external_id:
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        records, all_or_none = await self._records(request)
        created: set[str] = set()

        def upsert(item: Any, ctx_user: str) -> tuple[str, list[Change]]:
            if self._item_spec(item).name != spec.name:
                raise DmlError("INVALID_TYPE", f"Records must all be of type {spec.name}")
            values = {k: v for k, v in item.items() if k != "attributes"}
            if any(k.lower() == "id" for k in values):
                raise DmlError("INVALID_FIELD", "cannot specify Id in an upsert call", ["Id"])
            key = next((k for k in values if k.lower() == field.name.lower()), None)
            value = values.pop(key) if key is not None else None
            if value is None or value == "":
                raise DmlError("MISSING_ARGUMENT", f"{field.name} not specified", [field.name])
            matches = self.org.store.find_by(spec.name, field.name, str(value))
            context = self.org.write_context(ctx_user)
            if len(matches) > 1:
                ids = ", ".join(r["Id"] for r in matches)
                raise DmlError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{field.name}: more than one record found for external id field: [{ids}]",
                    [field.name],
                )
            if matches:
                record_id = matches[0]["Id"]
                return record_id, self.org.store.update(spec.name, record_id, values, context)
            record_id, changes = self.org.store.insert(
                spec.name, {**values, field.name: value}, context
            )
            created.add(record_id)
            return record_id, changes

        return self._run(request, records, all_or_none, upsert, created=created)

    async def collection_delete(self, request: web.Request) -> web.Response:
        raw = request.query.get("ids", "")
        ids = [i for i in raw.split(",") if i]
        self._check_size(len(ids))
        all_or_none = request.query.get("allOrNone", "false").lower() == "true"

        def delete(item: Any, ctx_user: str) -> tuple[str, list[Change]]:
            record_id = normalize_id(str(item))
            if record_id is None:
                raise DmlError("MALFORMED_ID", f"malformed id {item}")
            for name in OBJECTS:
                if self.org.store.get(name, record_id) is not None:
                    return record_id, self.org.store.delete(
                        name, record_id, self.org.write_context(ctx_user)
                    )
            error = self.org.store.missing(record_id)
            raise DmlError(
                "ENTITY_IS_DELETED"
                if error.status_code == "ENTITY_IS_DELETED"
                else "INVALID_CROSS_REFERENCE_KEY",
                error.message
                if error.status_code == "ENTITY_IS_DELETED"
                else "invalid cross reference id",
            )

        return self._run(request, ids, all_or_none, delete)

    async def collection_get(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        self._check_size(len(ids))
        raw_fields = request.query.get("fields")
        fields = [f.strip() for f in raw_fields.split(",")] if raw_fields else None
        result: list[Any] = []
        for raw in ids:
            record_id = normalize_id(raw)
            record = self.org.store.get(spec.name, record_id) if record_id else None
            result.append(
                None if record is None else record_json(spec, record, ctx.version, fields)
            )
        return web.json_response(result)

    @staticmethod
    def _item_spec(item: Any) -> SObjectSpec:
        if not isinstance(item, dict):
            raise DmlError("JSON_PARSER_ERROR", "Each record must be a JSON object")
        attributes = item.get("attributes")
        name = attributes.get("type") if isinstance(attributes, dict) else None
        for spec in OBJECTS.values():
            if isinstance(name, str) and spec.name.lower() == name.lower():
                return spec
        raise DmlError("INVALID_TYPE", f"sObject type '{name}' is not supported.")

    def _run(
        self,
        request: web.Request,
        items: list[Any],
        all_or_none: bool,
        operation: _Operation,
        *,
        created: set[str] | None = None,
    ) -> web.Response:
        """Apply ``operation`` to each item in one transaction and render the results; with
        ``created`` (an upsert: the ids it inserted) as UpsertResults."""
        ctx = rest_context(request)
        user = ctx.session.user_id
        checkpoint = self.org.store.checkpoint() if all_or_none else None
        results: list[dict[str, Any]] = []
        changes: list[Change] = []
        failed = False
        for item in items:
            try:
                record_id, item_changes = operation(item, user)
            except DmlError as exc:
                failed = True
                results.append({"success": False, "errors": [exc.as_collection()]})
                continue
            changes.extend(item_changes)
            results.append({"id": record_id, "success": True, "errors": []})
        if all_or_none and failed:
            assert checkpoint is not None
            self.org.store.restore(checkpoint)
            # Inserted ids die with the rollback; updated and deleted records keep theirs.
            inserted = created if created is not None else set()
            results = [
                r
                if not r["success"]
                else (
                    {"id": r["id"]} if request.method != "POST" and r["id"] not in inserted else {}
                )
                | {"success": False, "errors": [_ROLLED_BACK]}
                for r in results
            ]
            logger.info("salesforce collection rolled back records=%s", len(items))
        else:
            self.org.publish(changes, origin=change_origin(request, ctx.version), user_id=user)
            logger.info("salesforce collection records=%s failed=%s", len(items), failed)
        if created is not None:
            for r in results:
                r["created"] = bool(r["success"]) and r.get("id") in created
        return web.json_response(results)
