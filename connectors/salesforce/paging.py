"""Running SOQL through an injected fetch: every batch of a query, and a poll of a cursor.

The HTTP client (auth, retries, limits) is not here: callers pass ``fetch``, a coroutine
function from a path (``/services/data/vXX.X/query?q=...`` or a ``nextRecordsUrl``) to the
decoded JSON answer, which the Salesforce REST client provides. What this module owns is the
protocol of "Query" (REST API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm):
``records`` in batches, ``done`` false and ``nextRecordsUrl`` while more remain, even for a
query with LIMIT ("no guarantee that the requested batch size is the actual batch size",
"Query Options Header"); QueryAll's ``nextRecordsUrl`` also says ``query``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from connectors.salesforce.polling import PollPosition, PollStep, SoqlCursor
from schemas.errors import FatalAPIError

__all__ = ["Fetch", "poll", "query_path", "query_records"]

#: Path → decoded JSON body of a successful answer (the client raises for errors).
Fetch = Callable[[str], Awaitable[Mapping[str, Any]]]


def query_path(api_version: str, soql: str, *, include_deleted: bool = False) -> str:
    """The Query (or QueryAll, which also returns deleted records) path for ``soql``."""
    resource = "queryAll" if include_deleted else "query"
    return f"/services/data/v{api_version}/{resource}?{urlencode({'q': soql})}"


def _shape_error(detail: str) -> FatalAPIError:
    return FatalAPIError(
        f"Salesforce query answer {detail}; the query stops here: check the API version and "
        "that the path is a Query resource"
    )


async def query_records(fetch: Fetch, path: str) -> AsyncGenerator[list[Mapping[str, Any]], None]:
    """The records of the query at ``path``, one list per batch, following ``nextRecordsUrl``."""
    followed: set[str] = set()
    while True:
        body = await fetch(path)
        records = body.get("records")
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            raise _shape_error("has no list of records")
        yield records
        if body.get("done", True) is True:
            return
        next_url = body.get("nextRecordsUrl")
        if not isinstance(next_url, str) or not next_url.startswith("/services/data/"):
            raise _shape_error("says more records remain but gives no nextRecordsUrl")
        # A locator seen twice would page forever.
        if next_url in followed:
            raise _shape_error(f"repeats nextRecordsUrl {next_url}")
        followed.add(next_url)
        path = next_url


async def poll(
    cursor: SoqlCursor, position: PollPosition, fetch: Fetch, *, api_version: str
) -> AsyncGenerator[PollStep, None]:
    """One poll: query after query until the cursor has caught up, a step per query.

    Store each step's position durably together with (or after) its ``changed`` records: a
    poll cut short resumes from the last stored position, so a step whose position was not
    stored is yielded again (at least once, never lost).
    """
    while True:
        path = query_path(api_version, cursor.query(position))
        records = [record async for batch in query_records(fetch, path) for record in batch]
        step = cursor.advance(position, records)
        yield step
        position = step.position
        if not position.more:
            return
