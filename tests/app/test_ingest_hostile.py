"""Hostile and careless deliveries at ``WebhookIngest``, without a broker: ``publish`` encodes
each record with the real codec and checks it against the producer's message size, so a
delivery that would make the producer fail fails here too.

The rule under test: unauthenticated garbage is a 4xx, authenticated garbage is accepted
(normalize quarantines it), our own trouble is a 503; never an exception the view turns into
a 500."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from app.ingest import WebhookIngest
from app.metrics import Metrics
from app.settings import Settings, load_settings
from app.topics import max_message_bytes
from connectors.base.ingest import REPAIRED_HEADER
from connectors.intercom.ingest import sign as intercom_sign
from connectors.zendesk.ingest import sign as zendesk_sign
from schemas.codec import encode
from schemas.errors import IngestError
from schemas.models import RawDelivery
from tests.factories import NOW, body_of, case_event, signed_headers

SECRET = "whsec-hostile"
LIMIT = 64 * 1024
ZENDESK_TIME = NOW.isoformat().replace("+00:00", "Z")


class _Body:
    """An aiohttp-like body stream: fixed chunks, each after ``delay`` seconds."""

    def __init__(self, body: bytes, *, chunk: int = 16 * 1024, delay: float = 0.0) -> None:
        self._chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        self._delay = delay

    async def readany(self) -> bytes:
        if self._delay:
            await asyncio.sleep(self._delay)
        return self._chunks.pop(0) if self._chunks else b""

    def is_eof(self) -> bool:
        return not self._delay  # a trickling body is still arriving; the rest is buffered


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        connectors={
            "crm": {"platform": "generic", "secret": SECRET},
            "ic": {"platform": "intercom", "secret": SECRET},
            "zd": {"platform": "zendesk", "secret": SECRET},
        },
        webhook_max_body_bytes=LIMIT,
    )


@pytest.fixture
def stored() -> list[tuple[str, RawDelivery]]:
    return []


@pytest.fixture
def ingest(settings: Settings, stored: list[tuple[str, RawDelivery]]) -> WebhookIngest:
    async def publish(key: str, delivery: RawDelivery) -> None:
        key.encode()  # the producer's key serializer
        assert len(encode(delivery)) <= max_message_bytes(settings)  # the producer's limit
        stored.append((key, delivery))

    return WebhookIngest(settings, publish, Metrics(CollectorRegistry()), timeout=1.0)


def _signed(connector: str, body: bytes, **extra: str) -> dict[str, str]:
    if connector == "ic":
        headers = {"x-hub-signature": intercom_sign(SECRET, body)}
    elif connector == "zd":
        headers = {
            "x-zendesk-webhook-signature": zendesk_sign(SECRET, ZENDESK_TIME, body),
            "x-zendesk-webhook-signature-timestamp": ZENDESK_TIME,
        }
    else:
        headers = signed_headers(SECRET, body)
    return {"content-type": "application/json", **headers, **extra}


async def _post(
    ingest: WebhookIngest, connector: str, body: bytes, headers: dict[str, str]
) -> RawDelivery:
    return await ingest.receive(connector, headers, _Body(body), len(body), NOW)


DEEP = b"[" * 1000 + b"]" * 1000
HUGE_INT = b'{"type":"notification_event","id":"n1","topic":"ping","x":' + b"9" * 5000 + b"}"
SURROGATE = body_of(case_event("42", changed_fields=["\\ud800"])).replace(b"\\\\", b"\\")
# 0xFF as aiohttp hands it over: undecodable bytes become lone surrogates (surrogateescape)
BAD_BYTE = b"agent \xff/1.0".decode("utf-8", "surrogateescape")
ALL = ["crm", "ic", "zd"]


@pytest.mark.parametrize("connector", ALL)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(DEEP, id="deep-nesting"),
        pytest.param(HUGE_INT, id="5000-digit-int"),
        pytest.param(SURROGATE, id="lone-surrogate"),
        pytest.param(b"\xff\xfe{not json", id="invalid-utf8"),
        pytest.param(b'{"id": "' + b"x" * 40_000 + b'"}', id="huge-id"),
        pytest.param(b"a" * (LIMIT - 1), id="just-under-the-limit"),
    ],
)
async def test_signed_garbage_is_accepted_and_storable(
    ingest: WebhookIngest,
    stored: list[tuple[str, RawDelivery]],
    connector: str,
    body: bytes,
) -> None:
    delivery = await _post(ingest, connector, body, _signed(connector, body))
    assert delivery.body == body  # stored whole: normalize quarantines it with the reason
    assert [d for _, d in stored] == [delivery]
    assert len(delivery.delivery_id) < 300


@pytest.mark.parametrize("connector", ALL)
async def test_a_kept_header_that_is_not_utf8_is_stored_with_the_repair_named(
    ingest: WebhookIngest, stored: list[tuple[str, RawDelivery]], connector: str
) -> None:
    body = body_of(case_event())
    delivery = await _post(
        ingest, connector, body, _signed(connector, body, **{"User-Agent": BAD_BYTE})
    )
    assert delivery.headers["user-agent"] == "agent \xff/1.0"  # Latin-1: every byte recoverable
    assert delivery.headers[REPAIRED_HEADER] == "user-agent:latin-1"
    assert len(stored) == 1


@pytest.mark.parametrize(
    ("connector", "header", "value", "status"),
    [
        pytest.param(
            "crm", "x-deskstream-timestamp", "-99999999999", 401, id="crm-timestamp-far-past"
        ),
        pytest.param(
            "crm", "x-deskstream-timestamp", "9" * 5000, 401, id="crm-timestamp-5000-digits"
        ),
        pytest.param(
            "crm",
            "x-deskstream-timestamp",
            "\u0661\u0667" + "\u0660" * 8,
            401,
            id="crm-arabic-digits",
        ),
        pytest.param("crm", "x-deskstream-timestamp", BAD_BYTE, 401, id="crm-timestamp-0xff"),
        pytest.param(
            "crm", "x-deskstream-signature", "sha256=" + BAD_BYTE, 401, id="crm-signature-0xff"
        ),
        pytest.param("ic", "x-hub-signature", "sha1=\xff" + BAD_BYTE, 401, id="ic-signature-0xff"),
        pytest.param("zd", "x-zendesk-webhook-signature", BAD_BYTE, 401, id="zd-signature-0xff"),
        pytest.param(
            "zd", "x-zendesk-webhook-signature-timestamp", BAD_BYTE, 401, id="zd-timestamp-0xff"
        ),
        pytest.param(
            "zd",
            "x-zendesk-webhook-signature-timestamp",
            "0001-01-01T00:00:00+23:59",
            401,
            id="zd-year-1",
        ),
        pytest.param(
            "zd",
            "x-zendesk-webhook-signature-timestamp",
            "9999-12-31T23:59:59-23:59",
            401,
            id="zd-year-9999",
        ),
    ],
)
async def test_unauthenticated_garbage_in_headers_is_a_4xx_naming_the_header(
    ingest: WebhookIngest,
    stored: list[tuple[str, RawDelivery]],
    connector: str,
    header: str,
    value: str,
    status: int,
) -> None:
    body = body_of(case_event())
    with pytest.raises(IngestError) as refused:
        await _post(ingest, connector, body, _signed(connector, body, **{header: value}))
    assert refused.value.status == status
    assert header.split("-")[-1] in str(refused.value).lower()
    assert stored == []


async def test_a_body_that_trickles_in_is_refused_with_408(settings: Settings) -> None:
    async def publish(key: str, delivery: RawDelivery) -> None:
        raise AssertionError("must not publish")

    ingest = WebhookIngest(
        settings, publish, Metrics(CollectorRegistry()), timeout=1.0, read_timeout=0.2
    )
    body = body_of(case_event())
    with pytest.raises(IngestError, match=r"did not arrive within 0\.2 s") as refused:
        await ingest.receive(
            "crm", signed_headers(SECRET, body), _Body(body, chunk=8, delay=0.05), None, NOW
        )
    assert refused.value.status == 408


def test_the_largest_accepted_delivery_fits_the_message_size(settings: Settings) -> None:
    """The body limit and the record around it: every kept header at its longest."""
    delivery = RawDelivery(
        delivery_id="x" * 400,
        connector_id="c" * 100,
        platform="zendesk",
        received_at=NOW,
        headers={f"x-zendesk-header-{n}": "\xff" * 1024 for n in range(8)},
        body=b"\xff" * LIMIT,
        content_type="t" * 1024,
        signature_verified=True,
    )
    assert len(encode(delivery)) <= max_message_bytes(settings)


# -- secrets: rotation without a restart, 503 without one, never in a message ---------------


def _file_settings(folder: Path, **connector: str) -> Settings:
    return load_settings(
        connectors={"crm": {"platform": "generic", **connector}}, webhook_max_body_bytes=LIMIT
    )


async def _status(ingest: WebhookIngest, secret: str) -> int:
    body = body_of(case_event())
    try:
        await _post_signed(ingest, body, secret)
    except IngestError as exc:
        message, status = str(exc), exc.status
    else:
        return 200
    assert "old-secret" not in message  # secrets never appear in a message
    assert "new-secret" not in message
    return status


async def _post_signed(ingest: WebhookIngest, body: bytes, secret: str) -> RawDelivery:
    return await ingest.receive("crm", signed_headers(secret, body), _Body(body), len(body), NOW)


def _ingest(settings: Settings) -> WebhookIngest:
    async def publish(key: str, delivery: RawDelivery) -> None:
        return None

    return WebhookIngest(settings, publish, Metrics(CollectorRegistry()), timeout=1.0)


async def test_a_secret_file_rotates_without_a_restart_with_a_grace_period(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("old-secret\n")
    ingest = _ingest(_file_settings(tmp_path, secret_file=str(secret_file)))
    assert [await _status(ingest, s) for s in ("old-secret", "new-secret")] == [200, 401]

    secret_file.write_text("new-secret\nold-secret\n")  # the grace period: both accepted
    assert [await _status(ingest, s) for s in ("old-secret", "new-secret")] == [200, 200]

    secret_file.write_text("new-secret\n")  # the platform switched: the old one is refused
    assert [await _status(ingest, s) for s in ("old-secret", "new-secret")] == [401, 200]


async def test_a_previous_secret_file_is_accepted_until_it_is_emptied(tmp_path: Path) -> None:
    (tmp_path / "current").write_text("new-secret")
    (tmp_path / "previous").write_text("old-secret")
    settings = _file_settings(
        tmp_path,
        secret_file=str(tmp_path / "current"),
        previous_secret_file=str(tmp_path / "previous"),
    )
    ingest = _ingest(settings)
    assert [await _status(ingest, s) for s in ("old-secret", "new-secret")] == [200, 200]
    (tmp_path / "previous").write_text("")
    assert [await _status(ingest, s) for s in ("old-secret", "new-secret")] == [401, 200]


async def test_a_missing_secret_file_is_a_503_until_it_is_mounted(tmp_path: Path) -> None:
    secret_file = tmp_path / "not-yet"
    ingest = _ingest(_file_settings(tmp_path, secret_file=str(secret_file)))
    body = body_of(case_event())
    with pytest.raises(IngestError, match="cannot read the connector secret file") as refused:
        await _post_signed(ingest, body, "new-secret")
    assert refused.value.status == 503  # the platform keeps the delivery and retries it
    assert "will retry" in str(refused.value)

    secret_file.write_text("new-secret\n")
    assert (await _post_signed(ingest, body, "new-secret")).body == body


async def test_an_empty_secret_file_is_a_503_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("\n")
    ingest = _ingest(_file_settings(tmp_path, secret_file=str(tmp_path / "secret")))
    with pytest.raises(IngestError, match="DESKSTREAM_CONNECTORS__crm__SECRET_FILE") as refused:
        await _post_signed(ingest, body_of(case_event()), "new-secret")
    assert refused.value.status == 503


def test_json_bodies_used_above_are_what_they_claim() -> None:
    with pytest.raises(RecursionError):
        json.loads(DEEP)  # the stdlib parser alone would raise out of ingest
    assert "\ud800" in json.loads(SURROGATE)["changed_fields"][0]
