"""The Query and QueryAll resources: ``GET /services/data/vXX.X/query?q=SOQL`` and their pages.

"Query" (REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm):
the answer is ``{"totalSize", "done", "records": [{"attributes": {"type", "url"}, ...}]}``
plus ``nextRecordsUrl`` when more remain; deleted records are left out. "QueryAll"
(.../resources_queryall.htm, API 29.0 and later) includes records in the recycle bin, with
``IsDeleted`` true. "Execute a SOQL Query that Includes Deleted Items"
(https://developer.salesforce.com/docs/platform/api-rest/guide/dome-queryall.html) shows both
shapes. Errors are the list ``[{"message", "errorCode"}]`` of "Status Codes and Error
Responses" with 400; the parsing and the semantics are in ``soql`` and ``soql_eval``, paging
in ``query_locators``. A request without ``q`` answers ``MALFORMED_QUERY`` (UNVERIFIED).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandboxes.salesforce.catalog import OBJECTS
from sandboxes.salesforce.query_locators import Page, batch_size
from sandboxes.salesforce.rest_common import ApiError, rest_context
from sandboxes.salesforce.soql import SoqlError, parse
from sandboxes.salesforce.soql_eval import compile_query
from sandboxes.salesforce.state import Org

__all__ = ["QueryRoutes"]

logger = logging.getLogger(__name__)

_DATA = "/services/data/{version:v\\d+\\.\\d}"


class QueryRoutes:
    def __init__(self, org: Org) -> None:
        self.org = org

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for resource, handler in (("query", self.query), ("queryAll", self.query_all)):
            base = f"{_DATA}/{resource}"
            routes += [
                web.get(base, handler),
                web.get(f"{base}/", handler),
                web.get(f"{base}/{{locator}}", self.more),
            ]
        return routes

    async def query(self, request: web.Request) -> web.Response:
        return self._respond(request, lambda: self._run(request, deleted=False))

    async def query_all(self, request: web.Request) -> web.Response:
        return self._respond(request, lambda: self._run(request, deleted=True))

    async def more(self, request: web.Request) -> web.Response:
        locator = request.match_info["locator"]
        return self._respond(request, lambda: self.org.query_locators.next_page(locator))

    @staticmethod
    def _respond(request: web.Request, produce: Callable[[], Page]) -> web.Response:
        try:
            page = produce()
        except SoqlError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        return web.json_response(page.body(rest_context(request).version))

    def _run(self, request: web.Request, *, deleted: bool) -> Page:
        ctx = rest_context(request)
        text = request.query.get("q", "")
        plan = compile_query(parse(text), OBJECTS)
        store = self.org.store
        records = list(store.records[plan.spec.name].values())
        if deleted:
            name = plan.spec.name
            records += [r for r in store.recycle_bin.values() if store.deleted[r["Id"]] == name]

        def lookup(sobject: str, record_id: str) -> dict[str, Any] | None:
            return store.get(sobject, record_id)

        rows = [plan.render(r, ctx.version, lookup) for r in plan.run(records, lookup)]
        batch = batch_size(request.headers.get("Sforce-Query-Options"))
        logger.info(
            "salesforce query sobject=%s rows=%s all=%s batch=%s",
            plan.spec.name,
            len(rows),
            deleted,
            batch,
        )
        return self.org.query_locators.first_page(rows, batch)
