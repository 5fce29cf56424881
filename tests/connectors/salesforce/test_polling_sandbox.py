"""Polling CaseComment (no change events) against the Salesforce sandbox over REST.

Comments arrive in bursts that share one ``SystemModstamp`` (one sObject Collections call is
one transaction; the sandbox clock is manual), the poller reads 200 a query, and each step's
position goes through JSON as the durable source will store it. A transaction that commits
after a poll passed, stamped earlier than the high-water mark, is played by writing to the
org's store with that earlier time: REST always stamps "now".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from connectors.salesforce.paging import poll, query_path, query_records
from connectors.salesforce.polling import PollPosition, SoqlCursor
from connectors.salesforce.reconcile import differences, modstamp_fingerprint, window_query
from sandboxes.salesforce.store import WriteContext
from tests.sandboxes.salesforce.conftest import API, SalesforceEnv

VERSION = "59.0"


def fetcher(env: SalesforceEnv, **headers: str) -> Any:
    async def fetch(path: str) -> Mapping[str, Any]:
        response = await env.http.get(path, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, dict)
        return body

    return fetch


async def burst(env: SalesforceEnv, cases: list[str], count: int) -> list[str]:
    """``count`` comments round-robin on ``cases``, 200 a transaction."""
    bodies = [{"ParentId": cases[i % len(cases)]} for i in range(count)]
    return await env.create_many("CaseComment", bodies)


async def run_poll(
    env: SalesforceEnv, cursor: SoqlCursor, position: PollPosition
) -> tuple[list[Mapping[str, Any]], PollPosition]:
    changed: list[Mapping[str, Any]] = []
    async for step in poll(cursor, position, fetcher(env), api_version=VERSION):
        changed += step.changed
        position = PollPosition.from_json(step.position.to_json())
    return changed, position


async def test_each_comment_is_polled_exactly_once_through_bursts_and_late_commits(
    env: SalesforceEnv,
) -> None:
    cases = [await env.create("Case", {"Subject": f"case {n}"}) for n in range(4)]
    cursor = SoqlCursor("CaseComment", fields=("ParentId",), overlap=timedelta(seconds=30))
    created = await burst(env, cases, 250)  # 09:00:00.000, two transactions, one stamp
    env.clock.advance(0.4)
    created += await burst(env, cases, 100)  # 09:00:00.400: same second, later millis

    first, position = await run_poll(env, cursor, PollPosition())

    env.clock.advance(20)
    created += await burst(env, cases, 99)  # 09:00:20.400
    second, position = await run_poll(env, cursor, position)
    # Committed now, stamped 5 s before the high-water mark: inside the 30 s overlap.
    org = env.sandbox.org
    late_at = WriteContext(user_id=org.user_id, now=env.clock.now() - timedelta(seconds=5))
    late, _ = org.store.insert("CaseComment", {"ParentId": cases[0]}, late_at)
    created.append(late)
    env.clock.advance(1)
    await env.update("CaseComment", created[7], {"CommentBody": "edited"})
    third, position = await run_poll(env, cursor, position)
    fourth, _ = await run_poll(env, cursor, position)

    assert len(created) == len(set(created)) == 450
    assert Counter(r["Id"] for r in first) == Counter(created[:350])
    assert Counter(r["Id"] for r in second) == Counter(created[350:449])
    assert sorted(r["Id"] for r in third) == sorted([late, created[7]])
    assert fourth == []
    everything = Counter(r["Id"] for r in first + second + third)
    assert everything == Counter({**dict.fromkeys(created, 1), created[7]: 2})
    assert {r["ParentId"] for r in first} == set(cases)


async def test_reconciliation_finds_what_polling_missed_and_deletions(env: SalesforceEnv) -> None:
    case = await env.create("Case", {"Subject": "reconciled"})
    start = env.clock.now()
    await burst(env, [case], 300)
    cursor = SoqlCursor("CaseComment", overlap=timedelta(seconds=10))
    polled, _ = await run_poll(env, cursor, PollPosition())
    known = {str(r["Id"]): modstamp_fingerprint(r) for r in polled}
    env.clock.advance(60)
    # Stamped 50 s ago, committed now: outside the poller's 10 s overlap, inside the window.
    org = env.sandbox.org
    missed_at = WriteContext(user_id=org.user_id, now=env.clock.now() - timedelta(seconds=50))
    missed, _ = org.store.insert("CaseComment", {"ParentId": case}, missed_at)
    deleted = str(polled[3]["Id"])
    assert (await env.http.delete(f"{API}/sobjects/CaseComment/{deleted}")).status_code == 204
    env.clock.advance(1)  # the window ends before "now": this second is still being written

    soql = window_query("CaseComment", ["ParentId"], start, env.clock.now())
    fetch = fetcher(env, **{"Sforce-Query-Options": "batchSize=200"})
    batches = [
        b async for b in query_records(fetch, query_path(VERSION, soql, include_deleted=True))
    ]
    found = list(differences([r for b in batches for r in b], known))

    assert [len(b) for b in batches] == [200, 101]
    assert sorted((d.kind, d.record["Id"]) for d in found) == sorted(
        [("unknown", missed), ("changed", deleted)]
    )
    assert next(d for d in found if d.kind == "changed").record["IsDeleted"] is True
