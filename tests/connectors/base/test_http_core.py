"""The shared connector core: budget, retries, classification and redaction, with
``httpx.MockTransport`` handlers as the platform."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from connectors.base.fingerprints import fingerprint, value_hash
from connectors.base.http import ApiClient, redact, retry_after_seconds
from connectors.base.links import case_link_id, contact_link_id, is_link_id
from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.base.retry import RetryPolicy, call_with_retries
from schemas.errors import FatalAPIError, RateLimitedError, RetriableAPIError


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_spends_then_waits_at_the_refill_rate() -> None:
    clock = _Clock()
    budget = RateBudget(60, 60.0, headroom=1.0, clock=clock)  # one per second
    assert [budget.delay() for _ in range(60)] == [0.0] * 60
    assert budget.delay() == pytest.approx(1.0)  # the 61st call waits one refill
    clock.now += 5  # five tokens refill; the 61st call already spent one of them
    assert [budget.delay() for _ in range(4)] == [0.0] * 4
    assert budget.delay() == pytest.approx(1.0)


def test_budget_never_holds_more_than_the_platform_says_is_left() -> None:
    budget = RateBudget(100, 60.0, headroom=1.0, clock=_Clock())
    budget.observe(RateHeaders(limit=100, remaining=3))
    assert [budget.delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.delay() > 0


def test_budget_share_follows_partitions() -> None:
    clock = _Clock()
    budget = RateBudget(100, 100.0, headroom=1.0, clock=clock)
    budget.set_share(owned=4, total=8)
    assert sum(1 for _ in range(100) if budget.delay() == 0.0) == 50


def test_a_429_spends_the_budget_for_retry_after() -> None:
    clock = _Clock()
    budget = RateBudget(60, 60.0, headroom=1.0, clock=clock)
    budget.exhausted_for(10.0)
    assert budget.delay() == pytest.approx(11.0)


def _classify(response: httpx.Response) -> None:
    if response.status_code == 429:
        raise RateLimitedError("429", retry_after=retry_after_seconds(response))
    if response.status_code >= 500:
        raise RetriableAPIError("5xx", status=response.status_code)
    if response.status_code >= 400:
        raise FatalAPIError("4xx", status=response.status_code)


def _client(handler: object) -> ApiClient:
    return ApiClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://p.test"),  # type: ignore[arg-type]
        platform="test",
        budget=RateBudget(1000, 1.0),
        classify=_classify,
        rate_headers=lambda r: RateHeaders(),
    )


@pytest.mark.parametrize(
    ("statuses", "outcome", "calls"),
    [
        pytest.param([200], 200, 1, id="ok"),
        pytest.param([503, 502, 200], 200, 3, id="server-error-then-ok"),
        pytest.param([429, 200], 200, 2, id="rate-limited-then-ok"),
        pytest.param([422], FatalAPIError, 1, id="fatal-not-retried"),
        pytest.param([500, 500, 500], RetriableAPIError, 3, id="retries-exhausted"),
        # a 429 ran nothing: it spends the time budget, not an attempt
        pytest.param([429, 429, 429, 429, 200], 200, 5, id="429s-spend-no-attempt"),
        pytest.param([500, 429, 500, 429, 500], RetriableAPIError, 5, id="failures-spend-them"),
    ],
)
async def test_retry_policy(statuses: list[int], outcome: object, calls: int) -> None:
    replies = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(replies)
        return httpx.Response(status, headers={"retry-after": "0"} if status == 429 else {})

    client = _client(handler)
    policy = RetryPolicy(attempts=3, initial_s=0.0, max_s=0.0, jitter_s=0.0)
    if isinstance(outcome, int):
        response = await call_with_retries(lambda: client.request("GET", "/x"), policy)
        assert response.status_code == outcome
    else:
        with pytest.raises(outcome):  # type: ignore[call-overload]
            await call_with_retries(lambda: client.request("GET", "/x"), policy)
    assert client.calls == calls


async def test_a_call_rate_limited_past_its_time_budget_gives_up() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "0"})

    client = _client(handler)
    policy = RetryPolicy(attempts=3, initial_s=0.0, max_s=0.0, jitter_s=0.0, rate_limited_s=0.2)
    with pytest.raises(RateLimitedError):
        await call_with_retries(lambda: client.request("GET", "/x"), policy)
    assert client.calls > 3  # past the attempts, stopped by the budget alone


async def test_rate_limited_waits_at_least_retry_after() -> None:
    policy = RetryPolicy(attempts=2, initial_s=0.0, max_s=0.0, jitter_s=0.0)
    from tenacity import RetryCallState

    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_exception((RateLimitedError, RateLimitedError("429", retry_after=7.5), None))
    assert policy.wait(state) == 7.5


async def test_transport_errors_become_retriable_and_never_leak_httpx() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(RetriableAPIError, match="ConnectError") as raised:
        await _client(handler).request("GET", "/users/search?query=email:maria@example.com")
    assert "maria" not in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        pytest.param("Authorization: Bearer abcdef1234567890", "abcdef1234567890", id="bearer"),
        pytest.param('{"api_token": "zd-secret-42"}', "zd-secret-42", id="json-token"),
        pytest.param(
            "user maria.lopez@example.com not found", "maria.lopez@example.com", id="email"
        ),
        pytest.param("password=hunter2&x=1", "hunter2", id="form-password"),
    ],
)
def test_redact_strips_secrets_and_pii(text: str, leaked: str) -> None:
    assert leaked not in redact(text)


def test_link_ids_are_deterministic_and_recognisable() -> None:
    a = case_link_id("intercom", "ic", "123")
    assert a == case_link_id("intercom", "ic", "123")
    assert a != case_link_id("intercom", "ic", "124")
    assert is_link_id(a)
    assert not is_link_id("123")
    by_email = contact_link_id(
        " Maria@Example.com ", platform="intercom", connector_id="ic", entity_id="1"
    )
    same = contact_link_id(
        "maria@example.com", platform="zendesk", connector_id="zd", entity_id="9"
    )
    assert by_email == same  # one customer, one contact link, whatever the platform


def test_fingerprints_ignore_tag_order_but_not_values() -> None:
    assert value_hash(["b", "a"]) == value_hash(["a", "b"])
    assert fingerprint("zendesk", "1", "status", "solved") != fingerprint(
        "zendesk", "1", "status", "open"
    )


@pytest.mark.parametrize(("scope", "drained"), [("account", True), ("record", False)])
async def test_only_an_account_wide_429_spends_the_budget(scope: str, drained: bool) -> None:
    def classify(response: httpx.Response) -> None:
        raise RateLimitedError("429", retry_after=30.0, scope=scope)

    clock = _Clock()
    budget = RateBudget(60, 60.0, headroom=1.0, clock=clock)
    client = ApiClient(
        httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(429))),
        platform="test",
        budget=budget,
        classify=classify,
        rate_headers=lambda r: RateHeaders(),
    )
    with pytest.raises(RateLimitedError):
        await client.request("PUT", "https://p.test/tickets/1")
    assert budget.rate_limited == {scope: 1}  # counted either way, by scope
    assert (budget.delay() > 0) is drained


def test_budget_totals_count_calls_and_the_waits_it_imposed() -> None:
    clock = _Clock()
    budget = RateBudget(60, 60.0, headroom=1.0, clock=clock)  # one per second
    budget.set_share(owned=1, total=2)
    assert budget.per_second == pytest.approx(0.5)
    waits = [budget.delay() for _ in range(32)]  # 30 in the bucket, then 2 s each
    assert budget.calls == 32
    assert budget.waited_seconds == pytest.approx(sum(waits)) == pytest.approx(2.0 + 4.0)


async def test_calls_are_counted_per_command_when_commands_run_at_once() -> None:
    import asyncio

    from connectors.base.http import counting

    client = _client(lambda request: httpx.Response(200 if request.url.path != "/missing" else 404))

    async def command(paths: list[str]) -> tuple[int, int | None]:
        with counting() as count:
            for path in paths:
                await asyncio.sleep(0)  # interleave with the other command
                with contextlib.suppress(FatalAPIError):
                    await client.request("GET", path)
            return count.calls, count.last_status

    first, second = await asyncio.gather(command(["/a", "/b", "/c"]), command(["/d", "/missing"]))
    assert first == (3, 200)
    assert second == (2, 404)
    assert client.calls == 5  # the shared total still adds up
