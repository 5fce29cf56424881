"""sObject resources: create, read, update, delete, upsert by external id, describe, blobs.

Upsert follows "Insert or Update (Upsert) a Record Using an External ID",
https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html : no match
creates (201 ``{"id","success","errors","created":true}``), one match updates, several
matches answer 300 with the matching records' URLs and change nothing; "the ``created``
parameter is present in the response in API version 46.0 and later" (read in the page's
v57.0 copy, .../atlas.en-us.242.0.api_asynch.meta/api_asynch/bulk_api_2_0_upsert.htm). An
update answers 200 with ``created: false`` from 46.0 and 204 before ("Status Codes and Error
Responses": 200 and 204 are each "some PATCH requests"; the version split is UNVERIFIED,
queries: "upsert existing record API version 46.0 and later returns 200 created false").
"Upsert Records Using sObject Rows by External ID" (REST API v55.0,
https://developer.salesforce.com/docs/atlas.en-us.238.0.api_rest.meta/api/resources_sobject_upsert_patch.htm):
"Do not specify Id or an external ID field in the request body or an error is generated";
the sandbox answers 400 ``INVALID_FIELD`` (the code and wording are UNVERIFIED).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.fields import DmlError
from sandboxes.salesforce.ids import normalize_id
from sandboxes.salesforce.objects import SObjectSpec, describe_object
from sandboxes.salesforce.rest_common import (
    NOT_FOUND,
    ApiError,
    change_origin,
    read_json,
    record_json,
    record_url,
    rest_context,
    sobject_spec,
)
from sandboxes.salesforce.state import Org

__all__ = ["SObjectRoutes"]

logger = logging.getLogger(__name__)

_DATA = "/services/data/{version:v\\d+\\.\\d}"
#: From API version 46.0 an upsert answers with ``created``, and an update with 200 and a
#: body; before, an update is 204.
_UPSERT_BODY_SINCE = 46.0


class SObjectRoutes:
    def __init__(self, org: Org) -> None:
        self.org = org

    def routes(self) -> list[web.RouteDef]:
        base = f"{_DATA}/sobjects"
        return [
            web.get(f"{base}", self.describe_global),
            web.get(f"{base}/", self.describe_global),
            web.get(f"{base}/{{sobject}}", self.basic_info),
            web.post(f"{base}/{{sobject}}", self.create),
            web.post(f"{base}/{{sobject}}/", self.create),
            web.get(f"{base}/{{sobject}}/describe", self.describe),
            web.get(f"{base}/{{sobject}}/describe/", self.describe),
            web.get(f"{base}/{{sobject}}/{{record_id}}", self.get),
            web.patch(f"{base}/{{sobject}}/{{record_id}}", self.update),
            web.delete(f"{base}/{{sobject}}/{{record_id}}", self.delete),
            web.get(f"{base}/{{sobject}}/{{first}}/{{second}}", self.get_by_path),
            web.patch(f"{base}/{{sobject}}/{{field}}/{{value}}", self.upsert),
            web.delete(f"{base}/{{sobject}}/{{field}}/{{value}}", self.delete_by_external_id),
        ]

    # -- helpers --------------------------------------------------------------------------

    def _existing(self, spec: SObjectSpec, raw_id: str) -> dict[str, Any]:
        record_id = normalize_id(raw_id)
        if record_id is None:
            # A segment that is not an id reads as an external id field name.
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {raw_id}",
            )
        record = self.org.store.get(spec.name, record_id)
        if record is None:
            error = self.org.store.missing(record_id)
            raise ApiError(404, error.status_code, error.message)
        return record

    def _external_field(self, spec: SObjectSpec, name: str) -> str:
        field = spec.field(name)
        if field is None or not (field.external_id or field.name == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        return field.name

    def _matches(self, spec: SObjectSpec, field: str, value: str) -> list[dict[str, Any]]:
        if field == "Id":
            record_id = normalize_id(value)
            record = self.org.store.get(spec.name, record_id) if record_id else None
            return [record] if record else []
        return self.org.store.find_by(spec.name, field, value)

    @staticmethod
    def _fields_param(request: web.Request) -> list[str] | None:
        raw = request.query.get("fields")
        return [f.strip() for f in raw.split(",") if f.strip()] if raw else None

    def _multiple(
        self, spec: SObjectSpec, version: str, records: list[dict[str, Any]]
    ) -> web.Response:
        urls = [record_url(version, spec.name, r["Id"]) for r in records]
        return web.json_response(urls, status=300)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body = await read_json(request, self.org.config.max_body_bytes)
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object as the request body")
        return body

    # -- describe -------------------------------------------------------------------------

    async def describe_global(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        sobjects = []
        for spec in OBJECTS.values():
            described = describe_object(spec, ctx.version)
            described.pop("fields")
            described.pop("childRelationships")
            described.pop("recordTypeInfos")
            sobjects.append(described)
        return web.json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})

    async def basic_info(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        described = describe_object(spec, ctx.version)
        for key in ("fields", "childRelationships", "recordTypeInfos"):
            described.pop(key)
        return web.json_response({"objectDescribe": described, "recentItems": []})

    async def describe(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        return web.json_response(describe_object(spec, ctx.version))

    # -- CRUD -----------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        spec = sobject_spec(request.match_info["sobject"])
        body = await self._body(request)
        if "Id" in body or "id" in body:
            raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call")
        record_id = self._insert(request, spec, body)
        return web.json_response({"id": record_id, "success": True, "errors": []}, status=201)

    def _insert(self, request: web.Request, spec: SObjectSpec, body: dict[str, Any]) -> str:
        ctx = rest_context(request)
        try:
            record_id, changes = self.org.store.insert(
                spec.name, body, self.org.write_context(ctx.session.user_id)
            )
        except DmlError as exc:
            raise ApiError.from_dml(exc) from None
        self.org.publish(
            changes, origin=change_origin(request, ctx.version), user_id=ctx.session.user_id
        )
        logger.info("salesforce insert sobject=%s id=%s", spec.name, record_id)
        return record_id

    def _update(
        self, request: web.Request, spec: SObjectSpec, record_id: str, body: dict[str, Any]
    ) -> None:
        ctx = rest_context(request)
        try:
            changes = self.org.store.update(
                spec.name, record_id, body, self.org.write_context(ctx.session.user_id)
            )
        except DmlError as exc:
            raise ApiError.from_dml(exc) from None
        self.org.publish(
            changes, origin=change_origin(request, ctx.version), user_id=ctx.session.user_id
        )
        logger.info("salesforce update sobject=%s id=%s", spec.name, record_id)

    def _delete(self, request: web.Request, spec: SObjectSpec, record_id: str) -> None:
        ctx = rest_context(request)
        try:
            changes = self.org.store.delete(
                spec.name, record_id, self.org.write_context(ctx.session.user_id)
            )
        except DmlError as exc:
            raise ApiError.from_dml(exc) from None
        self.org.publish(
            changes, origin=change_origin(request, ctx.version), user_id=ctx.session.user_id
        )
        logger.info("salesforce delete sobject=%s id=%s", spec.name, record_id)

    async def get(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        record = self._existing(spec, request.match_info["record_id"])
        return web.json_response(
            record_json(spec, record, ctx.version, self._fields_param(request))
        )

    async def update(self, request: web.Request) -> web.Response:
        spec = sobject_spec(request.match_info["sobject"])
        record = self._existing(spec, request.match_info["record_id"])
        body = await self._body(request)
        self._update(request, spec, record["Id"], body)
        return web.Response(status=204)

    async def delete(self, request: web.Request) -> web.Response:
        spec = sobject_spec(request.match_info["sobject"])
        record = self._existing(spec, request.match_info["record_id"])
        self._delete(request, spec, record["Id"])
        return web.Response(status=204)

    async def get_by_path(self, request: web.Request) -> web.StreamResponse:
        """``/{id}/{blobField}`` streams a file; otherwise ``/{externalIdField}/{value}``."""
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        first, second = request.match_info["first"], request.match_info["second"]
        blob_field = spec.field(second)
        record_id = normalize_id(first)
        if record_id is not None and blob_field is not None and blob_field.type == "base64":
            record = self._existing(spec, record_id)
            data = self.org.store.blobs.get(record["Id"], b"")
            return web.Response(body=data, content_type="application/octet-stream")
        field = self._external_field(spec, first)
        records = self._matches(spec, field, second)
        if not records:
            raise ApiError(404, *NOT_FOUND)
        if len(records) > 1:
            return self._multiple(spec, ctx.version, records)
        return web.json_response(
            record_json(spec, records[0], ctx.version, self._fields_param(request))
        )

    async def upsert(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        field = self._external_field(spec, request.match_info["field"])
        value = request.match_info["value"]
        body = await self._body(request)
        named = [k for k in body if k.lower() in {field.lower(), "id"}]
        if named:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"The request body must not name the Id or the external ID field: {named[0]}",
                named,
            )
        records = self._matches(spec, field, value)
        if len(records) > 1:
            return self._multiple(spec, ctx.version, records)
        if not records:
            if field == "Id":
                raise ApiError(404, *NOT_FOUND)
            record_id = self._insert(request, spec, {**body, field: value})
            result: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
            if float(ctx.version) >= _UPSERT_BODY_SINCE:
                result["created"] = True
            return web.json_response(result, status=201)
        record_id = records[0]["Id"]
        self._update(request, spec, record_id, body)
        if float(ctx.version) < _UPSERT_BODY_SINCE:
            return web.Response(status=204)
        return web.json_response(
            {"id": record_id, "success": True, "errors": [], "created": False}, status=200
        )

    async def delete_by_external_id(self, request: web.Request) -> web.Response:
        ctx = rest_context(request)
        spec = sobject_spec(request.match_info["sobject"])
        field = self._external_field(spec, request.match_info["field"])
        records = self._matches(spec, field, request.match_info["value"])
        if not records:
            raise ApiError(404, *NOT_FOUND)
        if len(records) > 1:
            return self._multiple(spec, ctx.version, records)
        self._delete(request, spec, records[0]["Id"])
        return web.Response(status=204)
