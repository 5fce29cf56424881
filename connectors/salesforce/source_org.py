"""What every Salesforce pull feed needs from its org: a REST session, the SOQL reads the
sources share, their settings, and how a raw delivery becomes a raw-topic record.

Reads go to the QueryAll resource ("QueryAll", REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm):
a record deleted since it changed is still found, with ``IsDeleted`` true, and normalises as a
deletion instead of going missing. Every read of a Case or Contact selects what the normaliser
needs (``records.Vocabulary.select``) plus ``LastModifiedById``, so a record last changed by
the integration user (``service_account_id``) reads as Deskstream's own change.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base.http import platform_http
from connectors.base.settings import ConnectorSettings, SourceSettings
from connectors.base.source import RawRecord, Source
from connectors.salesforce.auth import TOKEN_FAILURES, token_source_for
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.paging import query_path, query_records
from connectors.salesforce.raw import current_query, decode_body, partition_key
from connectors.salesforce.reconcile import window_query
from connectors.salesforce.records import Vocabulary
from connectors.salesforce.session import TokenSource
from connectors.salesforce.settings import (
    SalesforceSettings,
    SalesforceSourceSettings,
    salesforce_settings,
)
from schemas.errors import RetriableAPIError
from schemas.models import RawDelivery

__all__ = [
    "IDS_PER_QUERY",
    "SYNCED",
    "OrgReader",
    "SalesforceSource",
    "raw_record",
    "source_settings",
]

#: the objects whose records Deskstream syncs through change events and re-reads
SYNCED = ("Case", "Contact")
#: ids in one ``WHERE Id IN (...)`` read (``raw.current_query``'s bound)
IDS_PER_QUERY = 200


def source_settings(
    connector_id: str, settings: ConnectorSettings, kind: str, shared: SourceSettings
) -> SalesforceSourceSettings:
    """The kind's Salesforce source settings (validated with the connector's at start-up);
    the shared ones alone when the connector was built without them (a test, a tool)."""
    found = salesforce_settings(connector_id, settings).sources.get(kind)
    return found or SalesforceSourceSettings.model_validate(shared.model_dump())


def raw_record(connector_id: str, delivery: RawDelivery) -> RawRecord:
    """The raw-topic record of a Salesforce delivery, keyed as ``raw.partition_key`` says."""
    return RawRecord(partition_key(connector_id, decode_body(delivery.body)), delivery)


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    # REST's "attributes" (type and URL) is no field of the record.
    return {k: v for k, v in record.items() if k != "attributes"}


class OrgReader:
    """One connector's REST session and the reads its sources make."""

    def __init__(
        self,
        connector_id: str,
        settings: ConnectorSettings,
        *,
        http: httpx.AsyncClient | None = None,
        tokens: TokenSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.org: SalesforceSettings = salesforce_settings(connector_id, settings)
        self.vocabulary = Vocabulary(self.org, settings.service_account_id or None)
        self._clock = clock
        self._owns_http = http is None
        self._http = http or platform_http(httpx.Timeout(30.0, connect=10.0))
        if tokens is None:
            # A failed sign-in is also the source's error (logged, retried); the counter is
            # the process's, which the worker exports.
            tokens = token_source_for(self.org, self._http, failures=TOKEN_FAILURES)
        self.tokens: TokenSource = tokens
        self.client = SalesforceClient(self._http, settings=self.org, tokens=tokens)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def window(self, sobject: str, since: datetime) -> str:
        """The QueryAll SOQL of every ``sobject`` record stamped since ``since``, up to and
        including the current second (``window_query`` ends before its bound)."""
        until = self.now() + timedelta(seconds=1)
        return window_query(sobject, self.read_fields(sobject), since, until)

    def read_fields(self, sobject: str) -> tuple[str, ...]:
        """What a read of ``sobject`` selects besides ``Id`` and ``SystemModstamp``."""
        fields = self.vocabulary.select(sobject)
        if sobject in SYNCED:
            return (*fields, "LastModifiedById", "IsDeleted")
        return fields

    async def fetch(self, path: str) -> Mapping[str, Any]:
        """A query answer's JSON (``paging.Fetch``)."""
        response = await self.client.request("GET", path)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RetriableAPIError(
                f"salesforce answered a query with {response.status_code} and no JSON object "
                "(a proxy page?); the source starts again from its stored position"
            )
        return body

    async def pages(
        self, soql: str, *, include_deleted: bool = True
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The records of ``soql``, a list per answer, following ``nextRecordsUrl``."""
        path = query_path(self.org.api_version, soql, include_deleted=include_deleted)
        async for batch in query_records(self.fetch, path):
            yield [_plain(record) for record in batch]

    async def by_ids(self, sobject: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The current values of these records, deleted ones included, by Id (one query per
        200 ids); a record that no longer exists at all is absent."""
        ids = sorted(set(record_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            soql = current_query(
                sobject, self.read_fields(sobject), ids[start : start + IDS_PER_QUERY]
            )
            async for batch in self.pages(soql):
                found.update((str(r.get("Id")), r) for r in batch)
        return found

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


class SalesforceSource(Source):
    """What the Salesforce sources share: their settings, the org reader, the name."""

    kind: ClassVar[str]

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        source: SourceSettings,
        http: httpx.AsyncClient | None = None,
        tokens: TokenSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connector_id = connector_id
        self._settings = source_settings(connector_id, settings, self.kind, source)
        self._org = OrgReader(connector_id, settings, http=http, tokens=tokens, clock=clock)
        self._setup()

    def _setup(self) -> None:
        """A kind's own set-up, once the settings and the org reader are there."""

    @property
    def name(self) -> str:
        return f"{self.connector_id}.{self.kind}"

    @property
    def tag(self) -> str:
        """The ``deskstream-source`` header of this source's deliveries."""
        return f"salesforce.{self.kind}"

    async def aclose(self) -> None:
        await self._org.aclose()
