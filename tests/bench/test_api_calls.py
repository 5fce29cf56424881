"""The API-call figures of the benchmarks: kinds and routes of the sandboxes' request log."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.api_calls import calls_table, count_calls, kind_of, route_lines, route_of


@dataclass(frozen=True)
class _Request:
    platform: str
    method: str
    path: str
    write: bool = False


@pytest.mark.parametrize(
    ("method", "path", "write", "kind"),
    [
        ("GET", "/api/v2/tickets", False, "lookup"),  # ?external_id=
        ("GET", "/api/v2/users/search", False, "lookup"),
        ("GET", "/api/v2/tickets/17/comments", False, "read"),
        ("GET", "/api/v2/users/me", False, "read"),
        ("POST", "/api/v2/imports/tickets", True, "write"),
        ("PUT", "/api/v2/tickets/17", True, "write"),
        ("POST", "/contacts/search", False, "lookup"),
        ("GET", "/conversations/215467219421456", False, "read"),
        ("GET", "/contacts/6643a1b2c3d4e5f601234567", False, "read"),
        ("GET", "/services/data/v60.0/query", False, "lookup"),
        ("GET", "/services/data/v60.0/sobjects/Case/500000000000001AAA", False, "read"),
    ],
)
def test_each_request_is_a_write_a_read_by_id_or_a_lookup(
    method: str, path: str, write: bool, kind: str
) -> None:
    assert kind_of(method, path, write) == kind


def test_routes_name_ids_once_and_keep_versions() -> None:
    assert route_of("/api/v2/tickets/17/comments") == "/api/v2/tickets/{id}/comments"
    assert route_of("/services/data/v60.0/sobjects/Case/500000000000001AAA") == (
        "/services/data/v60.0/sobjects/Case/{id}"
    )


def test_the_table_divides_by_human_changes_per_platform_and_kind() -> None:
    log = [
        _Request("zendesk", "GET", "/api/v2/tickets"),
        _Request("zendesk", "POST", "/api/v2/imports/tickets", write=True),
        _Request("zendesk", "GET", "/api/v2/tickets/1/comments"),
        _Request("zendesk", "GET", "/api/v2/tickets/2/comments"),
        _Request("intercom", "POST", "/conversations/9/reply", write=True),
    ]
    count = count_calls(log)
    table = calls_table(count, changes=4, target=1.1)
    assert table[0].split()[-3:] == ["1.25", "1.1", "0.88"]  # 5 calls ÷ 4 changes
    assert [line.split() for line in table[1:]] == [
        ["intercom", "0.25"],
        ["write", "0.25"],
        ["zendesk", "1.00"],
        ["write", "0.25"],
        ["read", "0.50"],
        ["lookup", "0.25"],
    ]
    assert route_lines(count)[1] == (
        "zendesk calls: GET /api/v2/tickets/{id}/comments 2; GET /api/v2/tickets 1; "
        "POST /api/v2/imports/tickets 1"
    )
