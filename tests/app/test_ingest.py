"""WebhookIngest without a broker: ``publish`` is an in-memory fake (a list), or one that
fails the way aiokafka fails. The real-broker path is in test_worker_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from app.faust_app import build_app
from app.give_way import WaitingDeliveries
from app.ingest import WebhookIngest, read_limited
from app.metrics import Metrics
from app.settings import Settings, load_settings
from app.web.webhooks import raw_publisher
from app.webhook_watch import WebhookWatch
from schemas.errors import (
    BrokerUnavailableError,
    IngestError,
    PayloadTooLargeError,
    SignatureError,
    UnknownConnectorError,
)
from schemas.models import Platform, RawDelivery
from tests.factories import NOW, body_of, case_event, signed_headers

SECRET = "whsec-test"


class _Chunks:
    """An aiohttp-like body stream that hands out fixed chunks, all of them buffered."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)

    async def readany(self) -> bytes:
        return next(self._chunks, b"")

    def is_eof(self) -> bool:
        return True


class _Late:
    """A body whose first read waits ``delay`` seconds; ``is_eof`` answers ``complete``."""

    def __init__(self, body: bytes, *, delay: float, complete: bool) -> None:
        self._body: bytes | None = body
        self._delay = delay
        self._complete = complete

    async def readany(self) -> bytes:
        if self._body is None:
            return b""
        await asyncio.sleep(self._delay)
        body, self._body = self._body, None
        return body

    def is_eof(self) -> bool:
        return self._complete


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        connectors={
            "crm": {"platform": "generic", "secret": SECRET},
            "nosecret": {"platform": "generic"},
        },
        webhook_max_body_bytes=2048,
    )


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def _count(metrics: Metrics, connector: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "deskstream_webhooks_total", {"connector": connector, "outcome": outcome}
    )
    return value or 0.0


async def _receive(
    ingest: WebhookIngest, connector: str, body: bytes, headers: dict[str, str]
) -> RawDelivery:
    return await ingest.receive(connector, headers, _Chunks(body), len(body), NOW)


async def test_an_authentic_delivery_is_published_then_accepted(
    settings: Settings, metrics: Metrics
) -> None:
    published: list[tuple[str, RawDelivery]] = []

    async def publish(key: str, delivery: RawDelivery) -> None:
        published.append((key, delivery))

    watch = WebhookWatch(quiet_seconds=60, min_writes=1)
    watch.wrote("crm")
    ingest = WebhookIngest(settings, publish, metrics, timeout=1.0, watch=watch)
    body = body_of(case_event("42"))
    with pytest.raises(SignatureError):  # a forged delivery says nothing about the platform
        await _receive(ingest, "crm", body, signed_headers("wrong", body))
    assert watch.last_delivery_age("crm") is None
    delivery = await _receive(ingest, "crm", body, signed_headers(SECRET, body))
    assert watch.last_delivery_age("crm") is not None  # the watch heard from the platform
    assert published == [("crm:case:42", delivery)]
    assert delivery.body == body
    assert delivery.platform is Platform.GENERIC
    assert delivery.signature_verified
    assert "x-deskstream-signature" not in delivery.headers  # not worth keeping
    assert _count(metrics, "crm", "accepted") == 1


@pytest.mark.parametrize(
    ("connector", "body", "sign_with", "error", "outcome"),
    [
        pytest.param("nope", b"{}", SECRET, UnknownConnectorError, None, id="unknown-connector"),
        pytest.param("crm", b"{}", "wrong", SignatureError, "unauthorized", id="forged"),
        pytest.param("crm", b"x" * 4096, SECRET, PayloadTooLargeError, "too_large", id="too-large"),
    ],
)
async def test_refused_deliveries_publish_nothing(
    settings: Settings,
    metrics: Metrics,
    connector: str,
    body: bytes,
    sign_with: str,
    error: type[IngestError],
    outcome: str | None,
) -> None:
    published: list[RawDelivery] = []

    async def publish(key: str, delivery: RawDelivery) -> None:
        published.append(delivery)

    ingest = WebhookIngest(settings, publish, metrics, timeout=1.0)
    with pytest.raises(error):
        await _receive(ingest, connector, body, signed_headers(sign_with, body))
    assert published == []
    if outcome:
        assert _count(metrics, connector, outcome) == 1


async def test_a_connector_without_secret_answers_503_so_the_platform_retries(
    settings: Settings, metrics: Metrics
) -> None:
    async def publish(key: str, delivery: RawDelivery) -> None:
        raise AssertionError("must not publish")

    ingest = WebhookIngest(settings, publish, metrics, timeout=1.0)
    with pytest.raises(IngestError, match="has no secret") as raised:
        await _receive(ingest, "nosecret", b"{}", signed_headers(SECRET, b"{}"))
    assert raised.value.status == 503


@pytest.mark.parametrize("failure", ["kafka-error", "no-ack"])
async def test_broker_trouble_is_a_503_and_nothing_is_accepted(
    settings: Settings, metrics: Metrics, failure: str
) -> None:
    async def publish(key: str, delivery: RawDelivery) -> None:
        if failure == "kafka-error":
            raise KafkaConnectionError("broker down")
        await asyncio.sleep(10)  # Kafka never acknowledges

    ingest = WebhookIngest(settings, publish, metrics, timeout=0.05)
    body = body_of(case_event())
    with pytest.raises(BrokerUnavailableError, match="platform will retry") as raised:
        await _receive(ingest, "crm", body, signed_headers(SECRET, body))
    assert raised.value.status == 503
    assert _count(metrics, "crm", "unavailable") == 1
    assert _count(metrics, "crm", "accepted") == 0


async def test_a_delivery_before_the_producer_started_is_a_503(
    settings: Settings, metrics: Metrics, tmp_path: Path
) -> None:
    """The web server can take a request in the moments before Faust's producer has started:
    Faust then raises its own NotReady, which must be a 503 (the platform retries) rather
    than an unhandled error and a 500."""
    built = build_app(
        settings.model_copy(
            update={"kafka_bootstrap_servers": "127.0.0.1:9", "state_dir": tmp_path}
        )
    )  # built, never started
    publish = raw_publisher(built.app, built.channels.raw.get_topic_name())
    ingest = WebhookIngest(settings, publish, metrics, timeout=1.0)
    body = body_of(case_event())
    with pytest.raises(BrokerUnavailableError, match="KafkaConnectionError") as raised:
        await _receive(ingest, "crm", body, signed_headers(SECRET, body))
    assert raised.value.status == 503
    assert _count(metrics, "crm", "unavailable") == 1


async def test_only_a_body_still_arriving_is_read_under_the_timeout(
    settings: Settings, metrics: Metrics
) -> None:
    """A body the HTTP parser has whole (aiohttp's ``is_eof``) is read with no timer, the
    per-delivery cost saved; one still arriving keeps the slow-sender bound. The same slow
    read tells them apart: past the timeout, only the unfinished body is refused."""
    published: list[RawDelivery] = []

    async def publish(key: str, delivery: RawDelivery) -> None:
        published.append(delivery)

    ingest = WebhookIngest(settings, publish, metrics, timeout=1.0, read_timeout=0.05)
    body = body_of(case_event("42"))
    headers = signed_headers(SECRET, body)
    whole = _Late(body, delay=0.2, complete=True)
    await ingest.receive("crm", headers, whole, len(body), NOW)
    assert [delivery.body for delivery in published] == [body]
    arriving = _Late(body, delay=0.2, complete=False)
    with pytest.raises(IngestError, match="did not arrive within") as refused:
        await ingest.receive("crm", headers, arriving, len(body), NOW)
    assert refused.value.status == 408
    assert len(published) == 1
    assert _count(metrics, "crm", "timeout") == 1


async def test_read_limited_stops_at_the_first_chunk_over_the_limit() -> None:
    stream = _Chunks(b"a" * 10, b"b" * 10, b"never read")
    with pytest.raises(PayloadTooLargeError):
        await read_limited(stream, None, 15)
    assert await stream.readany() == b"never read"


async def test_read_limited_trusts_a_declared_length_over_the_limit() -> None:
    stream = _Chunks(b"small")
    with pytest.raises(PayloadTooLargeError, match="20 bytes"):
        await read_limited(stream, 20, 15)
    assert await read_limited(_Chunks(b"ab", b"cd"), None, 15) == b"abcd"


async def test_deliveries_count_as_waiting_from_their_start_to_their_answer(
    settings: Settings, metrics: Metrics
) -> None:
    # What normalize and sync give way to (app.give_way): counted while a delivery is being
    # answered, however it ends.
    seen: list[int] = []
    waiting = WaitingDeliveries()
    both_publishing = asyncio.Event()

    async def publish(key: str, delivery: RawDelivery) -> None:
        seen.append(waiting.count)
        if len(seen) == 2:
            both_publishing.set()
        await both_publishing.wait()  # the first waits for Kafka while the second comes in

    ingest = WebhookIngest(settings, publish, metrics, timeout=1.0, waiting=waiting)
    body = body_of(case_event("42"))
    both = (
        _receive(ingest, "crm", body, signed_headers(SECRET, body)),
        _receive(ingest, "crm", body, signed_headers(SECRET, body)),
    )
    await asyncio.gather(*both)
    assert seen == [1, 2]
    assert not waiting
    with pytest.raises(SignatureError):
        await _receive(ingest, "crm", body, signed_headers("wrong", body))
    assert waiting.count == 0
