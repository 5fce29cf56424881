"""Hostile webhooks mixed into real traffic, against a real broker and a real worker process.

Every connector the worker ingests (generic, Intercom, Zendesk) gets forged and unsigned
deliveries, malformed JSON, near-limit and oversized bodies, deep nesting, huge numbers and
strings, invalid UTF-8 and lone surrogates, odd bytes in headers, wrong content types,
replayed timestamps and slow senders, between validly signed events. Counted, not timed:

- zero forged or unsigned deliveries admitted (no raw record holds a refused body's marker);
- zero 5xx answers, and every answer the one its kind calls for;
- zero agent crashes (the worker is the same process, its log names no crash);
- zero lag left on the raw topic (the group's committed offsets reach the end);
- every authenticated delivery kept: one raw record each, then one event, one quarantine
  record or (a redelivery) one duplicate dropped each (events + quarantine + dropped =
  accepted), and every event id once on the canonical topic;
- memory flat: the worker's RSS after the run is within 40 MB of its RSS after a warm-up;
- slow senders are cut off by the body read timeout.

CI size: 1,000 webhooks; ``DESKSTREAM_HOSTILE_WEBHOOKS=10000`` for the full size.
``DESKSTREAM_HOSTILE_SEED`` replays the seed the output prints (``pytest -s`` shows counts).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import RunningWorker, free_port, run_worker
from connectors.generic.ingest import sign as generic_sign
from connectors.intercom.ingest import sign as intercom_sign
from connectors.zendesk.ingest import sign as zendesk_sign
from schemas.codec import decode_as
from schemas.models import Envelope, QuarantineRecord, RawDelivery
from tests.kafka_records import read_to_end

pytestmark = [pytest.mark.cluster, pytest.mark.kafka]

SECRET = "hostile-webhook-secret"
BODY_LIMIT = 1024 * 1024  # the default DESKSTREAM_WEBHOOK_MAX_BODY_BYTES
CONNECTORS = ("crm", "ic", "zd")
WEBHOOKS = int(os.environ.get("DESKSTREAM_HOSTILE_WEBHOOKS", "1000"))
SEED = int(os.environ.get("DESKSTREAM_HOSTILE_SEED", "20261121"))
SLOW_SENDERS = 6
PARTITIONS = 4
RSS_GROWTH_LIMIT_MB = 40
#: the worker's body read timeout (app.ingest.BODY_READ_TIMEOUT_SECONDS) and aiohttp's linger
#: after a refusal: a slow sender is cut off within both
CUT_OFF_WITHIN_SECONDS = 10 + 10 + 5
#: what a crashed or restarted agent leaves in the worker log
CRASH = re.compile(r"crash|Traceback|RecursionError|MessageSizeTooLarge|UnicodeEncodeError", re.I)


# -- bodies ------------------------------------------------------------------------------------


def _valid(connector: str, n: int, text: str = "Printer on fire") -> dict[str, Any]:
    """A body that normalises into exactly one canonical event."""
    if connector == "crm":
        return {
            "source": {
                "entity_type": "case",
                "entity_id": f"case-{n % 50}",
                "event_type": "case.updated",
                "source_event_id": f"evt-{n}",
                "actor": {"kind": "agent", "id": "7", "email": "agent@example.com"},
                "occurred_at": "2026-11-21T09:59:00Z",
            },
            "op": "update",
            "changed_fields": ["subject"],
            "data": {"type": "case", "subject": text, "status": "open", "priority": "high"},
        }
    if connector == "ic":
        return {
            "type": "notification_event",
            "id": f"notif_{n}",
            "topic": "conversation.admin.closed",
            "created_at": 1735689600,
            "data": {
                "type": "notification_event_data",
                "item": {"type": "conversation", "id": str(n % 50), "state": "closed"},
            },
        }
    return {
        "type": "zen:event-type:ticket.subject_changed",
        "account_id": 12514403,
        "id": f"evt-{n}",
        "time": "2025-01-08T14:25:30.123456789Z",
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{5000 + n % 50}",
        "detail": {
            "actor_id": "381000000001",
            "assignee_id": "381000000001",
            "created_at": "2025-01-08T14:20:00.000000000Z",
            "id": str(5000 + n % 50),
            "is_public": True,
            "priority": "HIGH",
            "requester_id": "381000000003",
            "status": "OPEN",
            "subject": text,
            "submitter_id": "381000000003",
            "tags": ["vip"],
            "updated_at": "2025-01-08T14:25:30.123456789Z",
            "via": {"channel": "web"},
        },
        "event": {"current": text, "previous": "Printer"},
    }


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _padded(size: int, n: int) -> bytes:
    """Malformed JSON of exactly ``size`` bytes."""
    head = b'{"pad": "' + str(n).encode() + b"-"
    return head + b"x" * (size - len(head))


# -- deliveries --------------------------------------------------------------------------------


@dataclass
class Delivery:
    kind: str
    connector: str
    body: bytes
    headers: list[tuple[bytes, bytes]]
    expect: int  # the status the kind calls for
    path: str = ""


def _signed_headers(connector: str, body: bytes, at: datetime) -> list[tuple[bytes, bytes]]:
    if connector == "crm":
        stamp = int(at.timestamp())
        return [
            (b"x-deskstream-timestamp", str(stamp).encode()),
            (b"x-deskstream-signature", generic_sign(SECRET, stamp, body).encode()),
        ]
    if connector == "ic":
        return [(b"x-hub-signature", intercom_sign(SECRET, body).encode())]
    stamp_text = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        (b"x-zendesk-webhook-signature-timestamp", stamp_text.encode()),
        (b"x-zendesk-webhook-signature", zendesk_sign(SECRET, stamp_text, body).encode()),
    ]


def _replace(
    headers: list[tuple[bytes, bytes]], name: bytes, value: bytes
) -> list[tuple[bytes, bytes]]:
    return [(k, value if k == name else v) for k, v in headers]


SIGNATURE = {
    "crm": b"x-deskstream-signature",
    "ic": b"x-hub-signature",
    "zd": b"x-zendesk-webhook-signature",
}
JSON_TYPE = [(b"content-type", b"application/json")]


def _make(
    kind: str,
    expect: int,
    body: bytes,
    *,
    signed: bool = True,
    at: timedelta = timedelta(0),
    extra: list[tuple[bytes, bytes]] | None = None,
) -> Callable[[str], Delivery]:
    def build(connector: str) -> Delivery:
        headers = _signed_headers(connector, body, datetime.now(UTC) - at) if signed else []
        return Delivery(kind, connector, body, JSON_TYPE + headers + (extra or []), expect)

    return build


def _delivery(kind: str, connector: str, n: int, rng: random.Random) -> Delivery:
    marker = f"refused-{n}"
    valid = _json(_valid(connector, n))
    refused_body = _json(_valid(connector, n, text=marker))
    if kind == "valid":
        return _make(kind, 200, valid)(connector)
    if kind == "redelivery":
        return _make(kind, 200, _json(_valid(connector, n % 7)))(connector)
    if kind == "wrong-content-type":
        d = _make(kind, 200, valid)(connector)
        d.headers = [(b"content-type", b"text/plain; charset=\xff"), *d.headers[1:]]
        return d
    if kind == "odd-bytes-user-agent":
        return _make(kind, 200, valid, extra=[(b"user-agent", b"agent \xff\xfe\x80/1.0")])(
            connector
        )
    if kind == "lone-surrogate":
        # The JSON escape of a lone surrogate in a text field: valid JSON, no valid UTF-8.
        text_body = _json(_valid(connector, n, text="on fire \\ud800 now")).replace(
            b"\\\\ud800", b"\\ud800"
        )
        return _make(kind, 200, text_body)(connector)
    if kind == "huge-string":
        return _make(
            kind, 200, _json(_valid(connector, n, text="s" * rng.randint(100_000, 400_000)))
        )(connector)
    if kind == "malformed-json":
        return _make(kind, 200, valid[: rng.randint(1, len(valid) - 2)])(connector)
    if kind == "invalid-utf8":
        return _make(kind, 200, valid.replace(b"Printer", b"Pr\xffnter\xc3("))(connector)
    if kind == "deep-nesting":
        depth = rng.choice([100, 1000, 20_000])
        return _make(kind, 200, b"[" * depth + b"]" * depth)(connector)
    if kind == "huge-number":
        digits = str(rng.randint(1, 9)).encode() * rng.choice([400, 5000, 50_000])
        return _make(kind, 200, valid[:-1] + b', "n": ' + digits + b"}")(connector)
    if kind == "near-limit":
        return _make(kind, 200, _padded(BODY_LIMIT - rng.randint(0, 600), n))(connector)
    if kind == "over-producer-size":
        return _make(kind, 200, _padded(1_000_485, n))(connector)
    if kind == "oversized":
        return _make(kind, 413, _padded(BODY_LIMIT + rng.randint(1, 4096), n) + marker.encode())(
            connector
        )
    if kind == "forged":
        d = _make(kind, 401, refused_body)(connector)
        d.headers = _replace(
            d.headers, SIGNATURE[connector], b"sha256=" + rng.randbytes(32).hex().encode()
        )
        return d
    if kind == "unsigned":
        return _make(kind, 401, refused_body, signed=False)(connector)
    if kind == "odd-bytes-signature":
        d = _make(kind, 401, refused_body)(connector)
        d.headers = _replace(d.headers, SIGNATURE[connector], b"\xff\xfe" + b"0" * 40)
        return d
    if kind == "replayed":
        if connector == "ic":  # Intercom signs no time: a replay is a redelivery, deduped later
            return _make(kind, 200, valid)(connector)
        # Outside each scheme's window (generic 5 min, Zendesk 24 h: its retries may carry
        # their first signature), or ahead of the clock.
        hours = [1, 24, -1] if connector == "crm" else [25, 72, -1]
        return _make(kind, 401, refused_body, at=timedelta(hours=rng.choice(hours)))(connector)
    if kind == "absurd-timestamp":
        d = _make(kind, 401, refused_body)(connector)
        if connector == "crm":
            d.headers = _replace(
                d.headers,
                b"x-deskstream-timestamp",
                rng.choice([b"-99999999999", b"9" * 5000, b"\xff"]),
            )
        elif connector == "zd":
            d.headers = _replace(
                d.headers,
                b"x-zendesk-webhook-signature-timestamp",
                rng.choice([b"0001-01-01T00:00:00+23:59", b"\xff"]),
            )
        else:
            d.headers = _replace(d.headers, SIGNATURE[connector], b"sha1=" + b"f" * 40)
        return d
    if kind == "unknown-connector":
        d = _make(kind, 404, refused_body)(connector)
        d.path = "/webhooks/no-such-connector"
        return d
    raise AssertionError(kind)


#: kind → weight. Big bodies are rare (a megabyte each); everything else about as common.
KINDS: dict[str, float] = {
    "valid": 30, "redelivery": 3, "wrong-content-type": 3, "odd-bytes-user-agent": 3,
    "lone-surrogate": 4, "huge-string": 0.5, "malformed-json": 5, "invalid-utf8": 4,
    "deep-nesting": 4, "huge-number": 4, "near-limit": 0.4, "over-producer-size": 0.4,
    "oversized": 0.4, "forged": 6, "unsigned": 4, "odd-bytes-signature": 4, "replayed": 4,
    "absurd-timestamp": 4, "unknown-connector": 2,
}  # fmt: skip


def _deliveries(total: int, rng: random.Random) -> Iterator[Delivery]:
    """One of every kind for every connector first (the warm-up), then a seeded mix."""
    first = [(kind, connector) for kind in KINDS for connector in CONNECTORS]
    rng.shuffle(first)
    for n, (kind, connector) in enumerate(first):
        yield _delivery(kind, connector, n, rng)
    kinds, weights = list(KINDS), list(KINDS.values())
    for n in range(len(first), total):
        yield _delivery(rng.choices(kinds, weights)[0], rng.choice(CONNECTORS), n, rng)


# -- the worker and what it wrote ----------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    worker: RunningWorker
    settings: Settings
    bootstrap: str


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    run = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp(f"hostile-{run}")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DESKSTREAM_APP_ID": f"deskstream-hostile-{run}",
        "DESKSTREAM_TOPIC_PREFIX": f"hostile-{run}",
        "DESKSTREAM_PARTITIONS": str(PARTITIONS),
        "DESKSTREAM_REPLICATION_FACTOR": "1",
        "DESKSTREAM_STATE_DIR": str(folder),
    }
    for connector, platform in zip(CONNECTORS, ("generic", "intercom", "zendesk"), strict=True):
        (folder / f"{connector}.secret").write_text(SECRET + "\n")
        env[f"DESKSTREAM_CONNECTORS__{connector}__PLATFORM"] = platform
        env[f"DESKSTREAM_CONNECTORS__{connector}__SECRET_FILE"] = str(
            folder / f"{connector}.secret"
        )
    settings = load_settings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=env["DESKSTREAM_TOPIC_PREFIX"],
        app_id=env["DESKSTREAM_APP_ID"],
        partitions=PARTITIONS,
        replication_factor=1,
    )
    asyncio.run(ensure_topics(kafka_bootstrap_servers, topic_specs(settings)))
    with run_worker(env, port=free_port(), log=folder / "worker.log") as worker:
        yield Stack(worker=worker, settings=settings, bootstrap=kafka_bootstrap_servers)


def _rss_mb(worker: RunningWorker) -> float:
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


async def _records(bootstrap: str, topic: str) -> list[bytes]:
    """Every record of ``topic`` up to its end offsets now."""
    found = await read_to_end(bootstrap, topic, PARTITIONS)
    return [r.value for r in found if r.value is not None]


async def _lag(bootstrap: str, group: str, topic: str) -> int:
    """Records on ``topic`` the group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return sum(
            end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


async def _wait_for_no_lag(stack: Stack, within: float) -> int:
    deadline = time.monotonic() + within
    lag = -1
    while time.monotonic() < deadline:
        lag = await _lag(stack.bootstrap, stack.settings.app_id, stack.settings.topic("raw"))
        if lag == 0:
            return 0
        await asyncio.sleep(1)
    return lag


async def _slow_sender(url: str) -> tuple[bool, float]:
    """Headers, then one body byte a second: (answered 408 or cut off, seconds held)."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    answer = b""
    try:
        for _ in range(120):
            writer.write(b" ")
            await writer.drain()
            try:
                answer += await asyncio.wait_for(reader.read(1024), timeout=1.0)
            except TimeoutError:
                continue
            if answer == b"" or reader.at_eof():
                break
    except ConnectionError:
        pass
    finally:
        writer.close()
    return answer.startswith(b"HTTP/1.1 408") or answer == b"", time.monotonic() - started


# -- the test ----------------------------------------------------------------------------------


async def test_hostile_webhooks_never_stall_never_500_and_keep_every_authenticated_delivery(
    stack: Stack,
) -> None:
    rng = random.Random(SEED)
    print(f"\nhostile webhooks: {WEBHOOKS} deliveries, seed {SEED} (DESKSTREAM_HOSTILE_SEED)")
    deliveries = list(_deliveries(WEBHOOKS, rng))
    warmup = len(KINDS) * len(CONNECTORS)
    outcomes: Counter[tuple[str, int]] = Counter()
    wrong: list[str] = []
    pid = stack.worker.process.pid
    limit = asyncio.Semaphore(12)

    async def send(client: httpx.AsyncClient, d: Delivery) -> None:
        async with limit:
            path = d.path or f"/webhooks/{d.connector}"
            response = await client.post(path, content=d.body, headers=d.headers)
        outcomes[(d.kind, response.status_code)] += 1
        if response.status_code != d.expect:
            wrong.append(f"{d.kind}@{d.connector}: {response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(base_url=stack.worker.url, timeout=60) as client:
        await asyncio.gather(*(send(client, d) for d in deliveries[:warmup]))
        assert await _wait_for_no_lag(stack, within=60) == 0, "the warm-up left lag on raw"
        rss_warm = _rss_mb(stack.worker)
        slow = [asyncio.ensure_future(_slow_sender(stack.worker.url)) for _ in range(SLOW_SENDERS)]
        await asyncio.gather(*(send(client, d) for d in deliveries[warmup:]))
        slow_results = await asyncio.gather(*slow)

    lag = await _wait_for_no_lag(stack, within=90)
    rss_after = _rss_mb(stack.worker)
    s = stack.settings
    raw = [decode_as(v, RawDelivery) for v in await _records(stack.bootstrap, s.topic("raw"))]
    events = [decode_as(v, Envelope) for v in await _records(stack.bootstrap, s.topic("events"))]
    quarantined = [
        decode_as(v, QuarantineRecord)
        for v in await _records(stack.bootstrap, s.topic("quarantine"))
    ]
    async with httpx.AsyncClient(base_url=stack.worker.url, timeout=10) as client:
        metrics = (await client.get("/metrics")).text
    dropped = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("deskstream_duplicate_events_dropped_total{")
    )
    log = stack.worker.log.read_text(errors="replace")
    crashes = [line[:300] for line in log.splitlines() if CRASH.search(line)]

    statuses = Counter(status for (_, status), count in outcomes.items() for _ in range(count))
    accepted = statuses[200]
    admitted = [d.delivery_id for d in raw if re.search(rb"refused-\d+", d.body)]
    cut_off = sum(1 for ended, _ in slow_results if ended)
    held = max((seconds for _, seconds in slow_results), default=0.0)
    print(f"  answers: {dict(sorted(statuses.items()))}")
    for kind in KINDS:
        by_status = {status: c for (k, status), c in outcomes.items() if k == kind}
        print(f"    {kind:<22} {by_status}")
    print(
        f"  raw records {len(raw)}, events {len(events)}, quarantined {len(quarantined)}, "
        f"duplicates dropped {dropped:.0f} (accepted {accepted}); forged admitted "
        f"{len(admitted)}; raw lag {lag}"
    )
    print(
        f"  worker RSS {rss_warm:.0f} MB after warm-up, {rss_after:.0f} MB after "
        f"({rss_after - rss_warm:+.0f} MB); crash lines in the log {len(crashes)}"
    )
    print(
        f"  slow senders cut off {cut_off}/{SLOW_SENDERS}, held at most {held:.1f} s "
        f"(allowed {CUT_OFF_WITHIN_SECONDS} s)"
    )

    assert wrong == [], f"{len(wrong)} answers not the expected ones: {wrong[:10]}"
    assert not any(status >= 500 for status in statuses)
    assert admitted == []
    assert stack.worker.alive
    assert stack.worker.process.pid == pid
    assert crashes == [], crashes[:5]
    assert lag == 0
    assert len(raw) == accepted
    # one outcome per authenticated delivery; redeliveries dropped before the canonical topic
    assert len(events) + len(quarantined) + dropped == accepted
    assert dropped > 0
    assert len({e.event_id for e in events}) == len(events)
    assert all(q.stage == "normalize" for q in quarantined)
    assert rss_after - rss_warm < RSS_GROWTH_LIMIT_MB
    assert cut_off == SLOW_SENDERS
    assert held < CUT_OFF_WITHIN_SECONDS
