"""SOQL over REST: Query and QueryAll, filters, order, paging with query locators, errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandboxes.salesforce.conftest import API, SalesforceEnv


async def query(
    env: SalesforceEnv, soql: str, *, resource: str = "query", batch: int | None = None
) -> Any:
    headers = {"Sforce-Query-Options": f"batchSize={batch}"} if batch else {}
    response = await env.http.get(f"{API}/{resource}", params={"q": soql}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_select_where_order_limit_in_the_documented_shape(env: SalesforceEnv) -> None:
    a = await env.create("Case", {"Subject": "Alpha", "Priority": "High"})
    b = await env.create("Case", {"Subject": "bravo", "Priority": "Low"})
    await env.create("Case", {"Subject": "Charlie", "Priority": "Medium"})
    await env.create("Case", {"Subject": "Delta", "Priority": "High", "Status": "Closed"})

    body = await query(
        env,
        "select Id, subject, STATUS from case where Status = 'NEW' "
        "and Priority in ('High', 'Low') order by Subject desc limit 5",
    )

    assert body == {
        "totalSize": 2,
        "done": True,
        "records": [
            {
                "attributes": {"type": "Case", "url": f"{API}/sobjects/Case/{b}"},
                "Id": b,
                "Subject": "bravo",
                "Status": "New",
            },
            {
                "attributes": {"type": "Case", "url": f"{API}/sobjects/Case/{a}"},
                "Id": a,
                "Subject": "Alpha",
                "Status": "New",
            },
        ],
    }


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Subject LIKE 'print%'", ["printer jam", "Printer on fire"]),
        ("Subject LIKE '%100\\%%'", ["Refund 100%"]),
        ("Subject LIKE 'printer _am'", ["printer jam"]),
        ("NOT Subject LIKE 'print%'", ["Refund 100%", None]),
        ("Subject = null", [None]),
        ("Subject != null", ["printer jam", "Printer on fire", "Refund 100%"]),
        # SOQL has no three-valued logic: != keeps the record whose field is null.
        ("Subject != 'printer jam'", ["Printer on fire", "Refund 100%", None]),
        ("(Priority = 'High' OR Priority = 'Low') AND Subject != null", ["Refund 100%"]),
        (
            "(Priority = 'Low' AND Subject != null) OR IsEscalated = true",
            ["printer jam", "Refund 100%"],
        ),
        ("Subject NOT IN ('Printer on fire', 'Refund 100%')", ["printer jam", None]),
        ("Subject < 'q'", ["printer jam", "Printer on fire"]),
        ("IsEscalated = true", ["printer jam"]),
    ],
    ids=[
        "like-prefix",
        "like-escaped-percent",
        "like-underscore",
        "not-like",
        "is-null",
        "not-null",
        "not-equal-keeps-nulls",
        "parenthesised-or",
        "parenthesised-and-then-or",
        "not-in",
        "text-less-than-ignores-case",
        "boolean",
    ],
)
async def test_filters(env: SalesforceEnv, where: str, expected: list[str | None]) -> None:
    await env.create("Case", {"Subject": "Printer on fire"})
    await env.create("Case", {"Subject": "printer jam", "IsEscalated": True})
    await env.create("Case", {"Subject": "Refund 100%", "Priority": "Low"})
    await env.create("Case", {"Origin": "Web"})

    soql = f"SELECT Subject FROM Case WHERE {where} ORDER BY Subject NULLS LAST"  # noqa: S608 - test's own literals
    body = await query(env, soql)

    assert [r["Subject"] for r in body["records"]] == expected


async def test_datetimes_compare_at_whole_seconds_and_sort_with_milliseconds(
    env: SalesforceEnv,
) -> None:
    env.clock.advance(0.75)  # 09:00:00.750
    late = await env.create("Case", {"Subject": "late in the second"})
    env.clock.advance(0.5)  # 09:00:01.250
    next_second = await env.create("Case", {"Subject": "next second"})

    same_second = await query(
        env, "SELECT Id FROM Case WHERE SystemModstamp = 2025-03-01T09:00:00Z"
    )
    after = await query(
        env,
        "SELECT Id, SystemModstamp FROM Case WHERE SystemModstamp > 2025-03-01T10:00:00+01:00 "
        "ORDER BY SystemModstamp DESC",
    )

    assert [r["Id"] for r in same_second["records"]] == [late]
    assert [(r["Id"], r["SystemModstamp"]) for r in after["records"]] == [
        (next_second, "2025-03-01T09:00:01.250+0000")
    ]


async def test_parent_relationship_fields(env: SalesforceEnv) -> None:
    case = await env.create("Case", {"Subject": "Parent", "Status": "Working"})
    other = await env.create("Case", {"Subject": "Other"})
    comment = await env.create("CaseComment", {"ParentId": case, "CommentBody": "hello"})
    await env.create("CaseComment", {"ParentId": other, "CommentBody": "not this"})
    number = (await env.http.get(f"{API}/sobjects/Case/{case}")).json()["CaseNumber"]

    body = await query(
        env,
        "SELECT Id, CommentBody, Parent.CaseNumber, Parent.Status FROM CaseComment "
        "WHERE Parent.Status = 'Working'",
    )

    assert body["records"] == [
        {
            "attributes": {"type": "CaseComment", "url": f"{API}/sobjects/CaseComment/{comment}"},
            "Id": comment,
            "CommentBody": "hello",
            "Parent": {
                "attributes": {"type": "Case", "url": f"{API}/sobjects/Case/{case}"},
                "CaseNumber": number,
                "Status": "Working",
            },
        }
    ]


async def test_paging_follows_next_records_url_in_batches(env: SalesforceEnv) -> None:
    case = await env.create("Case", {"Subject": "busy"})
    ids = await env.create_many(
        "CaseComment", [{"ParentId": case, "CommentBody": f"c{i}"} for i in range(450)]
    )
    soql = "SELECT Id FROM CaseComment ORDER BY Id"

    first = await query(env, soql, batch=200)
    pages = [first]
    while not pages[-1]["done"]:
        url = pages[-1]["nextRecordsUrl"]
        assert url.startswith(f"{API}/query/01g")
        response = await env.http.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())

    assert [len(p["records"]) for p in pages] == [200, 200, 50]
    assert {p["totalSize"] for p in pages} == {450}
    assert first["nextRecordsUrl"].endswith("-200")
    assert [r["Id"] for p in pages for r in p["records"]] == sorted(ids)
    # Below the documented minimum the batch is 200; without the header it is 2,000.
    assert len((await query(env, soql, batch=10))["records"]) == 200
    assert (await query(env, soql))["done"] is True


async def test_a_locator_unused_for_15_minutes_expires(env: SalesforceEnv) -> None:
    case = await env.create("Case", {"Subject": "busy"})
    await env.create_many("CaseComment", [{"ParentId": case} for _ in range(250)])
    first = await query(env, "SELECT Id FROM CaseComment", batch=200)
    env.clock.advance(15 * 60)

    response = await env.http.get(first["nextRecordsUrl"])

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


async def test_query_all_includes_deleted_records(env: SalesforceEnv) -> None:
    kept = await env.create("Case", {"Subject": "kept"})
    gone = await env.create("Case", {"Subject": "gone"})
    comment = await env.create("CaseComment", {"ParentId": gone, "CommentBody": "with it"})
    env.clock.advance(30)
    assert (await env.http.delete(f"{API}/sobjects/Case/{gone}")).status_code == 204
    soql = "SELECT Id, IsDeleted, SystemModstamp FROM Case ORDER BY Subject"

    live = await query(env, soql)
    everything = await query(env, soql, resource="queryAll")
    comments = await query(
        env, "SELECT Id FROM CaseComment WHERE IsDeleted = true", resource="queryAll"
    )

    assert [r["Id"] for r in live["records"]] == [kept]
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [
        (gone, True),
        (kept, False),
    ]
    assert everything["records"][0]["SystemModstamp"] == "2025-03-01T09:00:30.000+0000"
    assert [r["Id"] for r in comments["records"]] == [comment]


@pytest.mark.parametrize(
    ("soql", "code", "words"),
    [
        ("SELECT Id FRM Case", "MALFORMED_QUERY", "unexpected token: 'FRM'"),
        ("SELECT Id FROM Case WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
        (
            "SELECT Id FROM Case WHERE Status = 'New' AND Priority = 'High' OR Origin = 'Web'",
            "MALFORMED_QUERY",
            "unexpected token",
        ),
        (
            "SELECT Id FROM Case WHERE Status = 'New' OR Priority = 'High' AND Origin = 'Web'",
            "MALFORMED_QUERY",
            "unexpected token",
        ),
        (
            "SELECT Id FROM Case WHERE SystemModstamp > 2025-03-01T09:00:00.000Z",
            "MALFORMED_QUERY",
            "ERROR at Row:1:Column:",
        ),
        ("SELECT Nope FROM Case", "INVALID_FIELD", "No such column 'Nope' on entity 'Case'"),
        ("SELECT Id FROM Kase", "INVALID_TYPE", "sObject type 'Kase' is not supported"),
        (
            "SELECT Id FROM Case WHERE SystemModstamp > '2025-03-01T09:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Case WHERE Description = 'x'",
            "INVALID_FIELD",
            "can not be filtered",
        ),
        ("SELECT Id FROM Case WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID"),
        ("", "MALFORMED_QUERY", "A query string has to be specified"),
    ],
    ids=[
        "misspelled-keyword",
        "dangling-where",
        "and-or-without-parentheses",
        "or-and-without-parentheses",
        "fractional-seconds",
        "unknown-field",
        "unknown-object",
        "quoted-datetime",
        "long-text-filter",
        "malformed-id",
        "empty",
    ],
)
async def test_refused_queries_answer_the_documented_error_list(
    env: SalesforceEnv, soql: str, code: str, words: str
) -> None:
    response = await env.http.get(f"{API}/query", params={"q": soql})

    assert response.status_code == 400
    errors = response.json()
    assert len(errors) == 1
    assert set(errors[0]) == {"message", "errorCode"}
    assert errors[0]["errorCode"] == code
    assert words in errors[0]["message"]
