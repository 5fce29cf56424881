"""The classifier's reading of a 403 ``REQUEST_LIMIT_EXCEEDED``: the daily allowance (pause)
or concurrent long-running requests (wait), from the header, else from the message."""

from __future__ import annotations

import httpx
import pytest

from connectors.salesforce.responses import DailyLimitExceededError, classify
from schemas.errors import RateLimitedError

URL = "https://example.my.salesforce.com/services/data/v62.0/limits"


def _refusal(message: str, header: str | None) -> httpx.Response:
    headers = {"Sforce-Limit-Info": header} if header else {}
    return httpx.Response(
        403,
        json=[{"message": message, "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        headers=headers,
        request=httpx.Request("GET", URL),
    )


@pytest.mark.parametrize(
    ("message", "header", "expected"),
    [
        ("TotalRequests Limit exceeded.", "api-usage=5/5", DailyLimitExceededError),
        ("TotalRequests Limit exceeded.", None, DailyLimitExceededError),
        ("ConcurrentPerOrgLongTxn Limit exceeded.", "api-usage=2/5", RateLimitedError),
        ("ConcurrentPerOrgLongTxn Limit exceeded.", None, RateLimitedError),
    ],
    ids=["daily-by-header", "daily-by-message", "concurrent-by-header", "concurrent-no-header"],
)
def test_request_limit_refusals(
    message: str, header: str | None, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as raised:
        classify(_refusal(message, header))
    assert type(raised.value) is expected
