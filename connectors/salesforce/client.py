"""The Salesforce REST API as typed calls on the shared HTTP core.

Every call goes through ``connectors.base.http.ApiClient`` (budgeted, classified by
``responses.classify``, counted) and, around it:

* the daily allowance (``limits.DailyLimit``): waited for before each call, fed from each
  answer's ``Sforce-Limit-Info``; a 403 for the spent allowance pauses and repeats the call
  (it was refused before it ran), so calls pause and never fail for it;
* the token (a ``TokenSource``): a 401 invalidates it and the call is repeated once with a
  new one;
* ``Sforce-Call-Options: client=<call_options_client>`` on every write ("Call Options
  Header", https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_calloptions.htm).
  Change events of our writes then carry ``changeOrigin``
  ``com/salesforce/api/rest/<version>;client=deskstream`` ("ChangeEventHeader Fields",
  https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm),
  which is how they are recognised as echoes. The header page lists the sObject row and
  external id resources; whether Salesforce also records the client of sObject Collections
  writes in ``changeOrigin`` is UNVERIFIED (searched "Sforce-Call-Options composite
  sobjects changeOrigin"): the header is sent on them too.

Resources (REST API Developer Guide): sObject Rows (get, create, update), "Insert or Update
(Upsert) a Record Using an External ID" (201 created, 200 updated with ``created: false`` from
API 46.0, 300 on several matches), sObject Collections create/update/upsert ("Upsert Records
Using sObject Collections": at most 200 records a call, results in request order, per-record
``errors``), sObject Describe, Limits, Query (``nextRecordsUrl`` paging).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base.http import ApiClient
from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.salesforce.limits import DailyLimit, parse_limit_info
from connectors.salesforce.models import FieldInfo, QueryPage, SaveResult
from connectors.salesforce.responses import (
    DailyLimitExceededError,
    InvalidSessionError,
    classify,
)
from connectors.salesforce.session import TokenSource
from connectors.salesforce.settings import SalesforceSettings
from schemas.errors import APIError, FatalAPIError, RetriableAPIError

__all__ = ["COLLECTION_LIMIT", "SalesforceClient"]

#: sObject Collections take at most 200 records a call
COLLECTION_LIMIT = 200
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_FIELDS_TTL_S = 600.0
#: a runaway ``nextRecordsUrl`` chain stops here (2,000 records a page: 10 million records)
_MAX_PAGES = 5000


class SalesforceClient(ApiClient):
    """Typed Salesforce calls on an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        settings: SalesforceSettings,
        tokens: TokenSource,
        daily: DailyLimit | None = None,
        budget: RateBudget | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            http,
            platform="salesforce",
            budget=budget or RateBudget(settings.rate_limit_per_minute, 60.0),
            classify=classify,
            rate_headers=self._observe,
        )
        self._tokens = tokens
        self._version = settings.api_version
        self._call_options = f"client={settings.call_options_client}"
        self.daily = daily or DailyLimit(
            reserve=settings.daily_reserve, probe_every_s=settings.daily_probe_seconds
        )
        self.daily.use_resume_check(self._probe_limits)
        self._monotonic = monotonic
        self._fields: dict[str, tuple[float, dict[str, FieldInfo]]] = {}

    # -- the call --------------------------------------------------------------------------

    def data_path(self, path: str) -> str:
        """``/sobjects/Case`` → ``/services/data/v62.0/sobjects/Case``."""
        return f"/services/data/v{self._version}{path}"

    def _observe(self, response: httpx.Response) -> RateHeaders:
        usage = parse_limit_info(response.headers.get("sforce-limit-info"))
        if usage is not None:
            self.daily.observe(*usage)
        # The per-minute budget is ours alone: Salesforce's header is a daily count.
        return RateHeaders()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``url`` is a path on the instance (``/services/data/...``)."""
        renewed = False
        while True:
            await self.daily.acquire()
            try:
                return await self._send(method, url, **kwargs)
            except InvalidSessionError:
                if renewed:
                    raise
                renewed = True
            except DailyLimitExceededError:
                self.daily.exhausted()  # acquire() pauses; the call is repeated after

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call with the current token; a 401 invalidates the token it used."""
        session = await self._tokens.session()
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {session.access_token}"}
        if method.upper() in _WRITES:
            headers["Sforce-Call-Options"] = self._call_options
        try:
            return await super().request(
                method, session.instance_url + path, headers=headers, **kwargs
            )
        except InvalidSessionError:
            await self._tokens.invalidate(session)
            raise

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RetriableAPIError(
                f"salesforce {method} {path.split('?')[0]} answered {response.status_code} "
                "without JSON (a proxy page?); will retry",
                status=response.status_code,
            ) from None

    async def _probe_limits(self) -> bool:
        """The daily pause's resume check: one ``/limits`` read (its header is observed),
        never through ``acquire``."""
        # A 403 for the spent allowance is an answer too: its header was observed.
        with contextlib.suppress(APIError):
            await self._send("GET", self.data_path("/limits"))
        return self.daily.has_room()

    # -- sObject rows ----------------------------------------------------------------------

    async def get(
        self, sobject: str, record_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = {"fields": ",".join(fields)} if fields else None
        path = self.data_path(f"/sobjects/{sobject}/{quote(record_id, safe='')}")
        return _object(await self._json("GET", path, params=params), "record")

    async def create(self, sobject: str, values: Mapping[str, Any]) -> str:
        body = await self._json("POST", self.data_path(f"/sobjects/{sobject}"), json=values)
        result = SaveResult.parse(body)
        if result.id is None:
            raise RetriableAPIError(f"salesforce create {sobject} answered no id; will retry")
        return result.id

    async def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        path = self.data_path(f"/sobjects/{sobject}/{quote(record_id, safe='')}")
        await self.request("PATCH", path, json=values)

    async def upsert(
        self, sobject: str, external_id_field: str, value: str, values: Mapping[str, Any]
    ) -> SaveResult:
        """Create or update the record whose ``external_id_field`` is ``value``: safe to
        repeat. ``created`` says which; several matches raise ``MultipleMatchesError``."""
        path = self.data_path(f"/sobjects/{sobject}/{external_id_field}/{quote(value, safe='')}")
        response = await self.request("PATCH", path, json=values)
        if response.status_code == 204:  # before API 46.0: an update answers without a body
            return SaveResult(None, True, created=False)
        result = SaveResult.parse(_object(response.json(), "upsert result"))
        created = response.status_code == 201 if result.created is None else result.created
        return SaveResult(result.id, result.success, result.errors, created)

    # -- sObject Collections ---------------------------------------------------------------

    async def create_many(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool = False
    ) -> list[SaveResult]:
        return await self._collection("POST", "/composite/sobjects", sobject, records, all_or_none)

    async def update_many(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool = False
    ) -> list[SaveResult]:
        """Each record carries its ``Id``."""
        return await self._collection("PATCH", "/composite/sobjects", sobject, records, all_or_none)

    async def upsert_many(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
    ) -> list[SaveResult]:
        """Each record carries its ``external_id_field`` value (and no ``Id``)."""
        path = f"/composite/sobjects/{sobject}/{external_id_field}"
        return await self._collection("PATCH", path, sobject, records, all_or_none)

    async def _collection(
        self,
        method: str,
        path: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        all_or_none: bool,
    ) -> list[SaveResult]:
        """One result per record, in order, in calls of at most 200. ``all_or_none`` holds
        per call. A failed call raises; the calls before it stay applied."""
        results: list[SaveResult] = []
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = [
                {"attributes": {"type": sobject}, **record}
                for record in records[start : start + COLLECTION_LIMIT]
            ]
            body = await self._json(
                method,
                self.data_path(path),
                json={"allOrNone": all_or_none, "records": chunk},
            )
            if not isinstance(body, list) or len(body) != len(chunk):
                raise RetriableAPIError(
                    f"salesforce {method} {path} answered "
                    f"{len(body) if isinstance(body, list) else 'no'} results for {len(chunk)} "
                    "records; will retry"
                )
            results += [SaveResult.parse(item) for item in body]
        return results

    # -- describe, limits ------------------------------------------------------------------

    async def describe(self, sobject: str) -> dict[str, Any]:
        path = self.data_path(f"/sobjects/{sobject}/describe")
        return _object(await self._json("GET", path), "describe")

    async def fields(self, sobject: str) -> dict[str, FieldInfo]:
        """The object's fields by name, from ``describe``, cached for 10 minutes."""
        cached = self._fields.get(sobject)
        now = self._monotonic()
        if cached is not None and now - cached[0] < _FIELDS_TTL_S:
            return cached[1]
        raw = (await self.describe(sobject)).get("fields") or []
        inventory = {f["name"]: FieldInfo.parse(f) for f in raw if isinstance(f, dict)}
        self._fields[sobject] = (now, inventory)
        return inventory

    async def limits(self) -> dict[str, Any]:
        return _object(await self._json("GET", self.data_path("/limits")), "limits")

    # -- SOQL ------------------------------------------------------------------------------

    async def query(self, soql: str) -> QueryPage:
        return _page(await self._json("GET", self.data_path("/query"), params={"q": soql}))

    async def query_more(self, next_records_url: str) -> QueryPage:
        return _page(await self._json("GET", next_records_url))

    async def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every record of ``soql``, following ``nextRecordsUrl``."""
        page = await self.query(soql)
        records = list(page.records)
        seen: set[str] = set()
        while page.next_records_url is not None:
            if page.next_records_url in seen or len(seen) >= _MAX_PAGES:
                raise FatalAPIError(
                    "salesforce query paging does not end (nextRecordsUrl repeats or exceeds "
                    f"{_MAX_PAGES} pages); narrow the query"
                )
            seen.add(page.next_records_url)
            page = await self.query_more(page.next_records_url)
            records += page.records
        return records


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RetriableAPIError(f"salesforce answered an unexpected {what} (not an object)")
    return body


def _page(body: Any) -> QueryPage:
    page = _object(body, "query page")
    records = [r for r in page.get("records") or [] if isinstance(r, dict)]
    next_url = page.get("nextRecordsUrl")
    return QueryPage(
        records=records,
        total_size=int(page.get("totalSize") or 0),
        done=bool(page.get("done", True)),
        next_records_url=str(next_url) if next_url and not page.get("done", True) else None,
    )
