"""Ambiguous writes: what the sinks' read-before-retry costs, and the window it leaves.

    .venv/bin/python -m bench.ambiguous_writes [--appends 120] [--rate 0.3] [--seed 7]

Appends are the writes no platform deduplicates (Zendesk comments via ticket updates,
Intercom replies and notes). Against each sandbox applying ``--rate`` of writes and then losing
the answer (5xx, reset, timeout), ``--appends`` message/append commands run through the real
retry policy, then all again at attempt 2 (a worker killed after the platform answered).
Printed per platform and mode: ambiguous faults injected, duplicates found, and the extra API
calls per fault (against the same commands without faults). Then the residual window, set up
on purpose: an append whose answer was lost, ``gap`` other comments landing before the retry,
and how many copies exist afterwards; and a *different* command with the very same body
retried within the lookback (the message it carries is not written).

Every figure is a count from the sandbox's own state, not a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from app.settings import ConnectorSettings
from bench.figures import row
from connectors.base.retry import RetryPolicy, call_with_retries
from connectors.base.sink import Sink
from connectors.intercom import models as ic
from connectors.intercom.sink import IntercomSink
from connectors.zendesk.sink import ZendeskSink
from sandboxes.base import ManualClock, run_sandboxes
from sandboxes.intercom import AdminSeed, IntercomSandbox, IntercomSandboxConfig
from sandboxes.zendesk import ZendeskSandbox, ZendeskSandboxConfig, basic_header
from schemas.errors import RetriableAPIError
from schemas.models import Actor, ActorKind, EntityRef, EntityType, Message, SyncCommand

TOKEN = "bench-token"
BOT = "990001"
CLIENT_TIMEOUT_S = 0.5
POLICY = RetryPolicy(attempts=20, initial_s=0.0, max_s=0.0, jitter_s=0.0)
PER_RECORD = 5  # appends per ticket / conversation
MODES = ("5xx", "reset", "timeout")
AT = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


@dataclass
class Desk:
    """One platform: its sandbox, a sink, a plain client, and how to read back."""

    platform: str
    sink: Sink
    api: httpx.AsyncClient
    new_record: Callable[[int], Awaitable[str]]
    bodies: Callable[[str], list[str]]  # plain texts of the record's messages
    other_comment: Callable[[str, str], Awaitable[None]]
    lookback: int


@asynccontextmanager
async def zendesk(seed: int) -> AsyncIterator[Desk]:
    config = ZendeskSandboxConfig(api_tokens=(TOKEN,), rate_limit_per_minute=10**6)
    sandbox = ZendeskSandbox.create(seed=seed, clock=ManualClock(), config=config)
    async with run_sandboxes([sandbox]) as running:
        url = running.url("zendesk")
        settings = ConnectorSettings(
            platform="zendesk",
            api_base_url=url,
            api_user=config.integration_email,
            api_token=SecretStr(TOKEN),
            rate_limit_per_minute=10**6,
        )
        auth = {"Authorization": basic_header(config.integration_email, TOKEN)}
        async with (
            httpx.AsyncClient(base_url=url, headers=auth) as api,
            httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as http,
        ):
            state = sandbox.core.state

            async def new_record(n: int) -> str:
                body = {"ticket": {"subject": f"Case {n}", "comment": {"body": f"Case {n}"}}}
                return str((await api.post("/api/v2/tickets", json=body)).json()["ticket"]["id"])

            def bodies(record: str) -> list[str]:
                return [state.comments[c].body for c in state.tickets[int(record)].comment_ids]

            async def other_comment(record: str, text: str) -> None:
                body = {"ticket": {"comment": {"body": text, "public": False}}}
                await api.put(f"/api/v2/tickets/{record}", json=body)

            sink = ZendeskSink(connector_id="zd", settings=settings, http=http)
            yield Desk("zendesk", sink, api, new_record, bodies, other_comment, 20)
            await sink.aclose()


@asynccontextmanager
async def intercom(seed: int) -> AsyncIterator[Desk]:
    admins = (
        AdminSeed(id="990002", name="Ada", email="ada@x.example"),
        AdminSeed(id=BOT, name="Deskstream", email="bot@x.example"),
    )
    config = IntercomSandboxConfig(
        access_tokens=(TOKEN,), admins=admins, rate_limit_per_minute=10**6
    )
    sandbox = IntercomSandbox.create(seed=seed, clock=ManualClock(), config=config)
    async with run_sandboxes([sandbox]) as running:
        url = running.url("intercom")
        settings = ConnectorSettings(
            platform="intercom",
            api_base_url=url,
            api_token=SecretStr(TOKEN),
            service_account_id=BOT,
            rate_limit_per_minute=10**6,
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx.AsyncClient(base_url=url, headers=auth) as api,
            httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S) as http,
        ):
            state = sandbox.state

            async def new_record(n: int) -> str:
                contact = (await api.post("/contacts", json={"email": f"c{n}@x.example"})).json()
                body = {"from": {"type": "user", "id": contact["id"]}, "body": f"Case {n}"}
                return str((await api.post("/conversations", json=body)).json()["conversation_id"])

            def bodies(record: str) -> list[str]:
                parts = state.conversations[record].parts
                return [ic.html_to_text(p.body) for p in parts if p.author.get("id") == BOT]

            async def other_comment(record: str, text: str) -> None:
                body = {"message_type": "note", "type": "admin", "admin_id": BOT, "body": text}
                await api.post(f"/conversations/{record}/reply", json=body)

            sink = IntercomSink(connector_id="ic", settings=settings, http=http)
            yield Desk("intercom", sink, api, new_record, bodies, other_comment, 500)
            await sink.aclose()


PLATFORMS = {"zendesk": zendesk, "intercom": intercom}


def append(desk: Desk, record: str, key: str, text: str, *, attempt: int = 1) -> SyncCommand:
    author = Actor(kind=ActorKind.AGENT, id="a-1", name="Agent One")
    return SyncCommand(
        command_id=key,
        link_id="lnk_" + "b" * 32,
        target=EntityRef(
            platform=desk.platform,
            connector_id="zd" if desk.platform == "zendesk" else "ic",
            entity_type=EntityType.MESSAGE,
            entity_id=record,
        ),
        action="append",
        idempotency_key=key,
        caused_by_event_id=f"evt-{key}",
        data=Message(case_id="x", author=author, body_text=text, public=False, created_at=AT),
        issued_at=AT,
        attempt=attempt,
        options={"source_platform": "generic"},
    )


async def faults(desk: Desk, **profile: object) -> int:
    """Apply ``profile`` (empty: none); the ambiguous writes injected so far."""
    before = (await desk.api.get("/_sandbox/state")).json()["faults"]["ambiguous_writes"]
    await desk.api.put("/_sandbox/faults", json=profile or {"profile": "none"})
    return int(before)


async def workload(desk: Desk, commands: list[SyncCommand]) -> int:
    """Run each command through the retry policy, then again at attempt 2; the API calls."""
    calls = desk.sink.client.calls
    for again in (False, True):
        for command in commands:
            cmd = command.model_copy(update={"attempt": 2}) if again else command
            await call_with_retries(lambda cmd=cmd: desk.sink.execute(cmd), POLICY)  # type: ignore[misc]
    return int(desk.sink.client.calls - calls)


async def ambiguous_run(platform: str, mode: str, appends: int, rate: float, seed: int) -> None:
    counts: dict[str, int] = {}
    for label, profile in (("baseline", {}), ("faulty", {"ambiguous_write_rate": rate})):
        async with PLATFORMS[platform](seed) as desk:
            records = [await desk.new_record(n) for n in range(appends // PER_RECORD)]
            texts = {r: [f"{r} message {i}" for i in range(PER_RECORD)] for r in records}
            commands = [
                append(desk, r, f"{r}-{i}", t) for r in records for i, t in enumerate(texts[r])
            ]
            if profile:
                await faults(desk, **profile, ambiguous_modes=[mode], ambiguous_delay_s=5.0)
            counts[label] = await workload(desk, commands)
            counts["faults"] = await faults(desk)
            found = Counter(
                b for r in records for b in desk.bodies(r) for t in texts[r] if b.endswith(t)
            )
            counts["duplicates"] = sum(n - 1 for n in found.values())
            counts["missing"] = sum(
                1
                for r in records
                for t in texts[r]
                if not any(b.endswith(t) for b in desk.bodies(r))
            )
    extra = (counts["faulty"] - counts["baseline"]) / max(1, counts["faults"])
    name = f"{platform} {mode}"
    print(row(f"{name}: commands (x2 replay)", str(len(commands)), "", None))
    print(row(f"{name}: ambiguous faults", str(counts["faults"]), "", None))
    print(
        row(
            f"{name}: duplicates / missing",
            f"{counts['duplicates']} / {counts['missing']}",
            "0 / 0",
            None,
        )
    )
    print(row(f"{name}: extra calls per fault", f"{extra:.2f}", "", None))


async def window(platform: str, seed: int) -> None:
    """Duplicates when ``gap`` comments land between a lost answer and the retry."""
    async with PLATFORMS[platform](seed) as desk:
        gaps = (0, desk.lookback - 1, desk.lookback, desk.lookback + 5)
        for gap in gaps:
            record = await desk.new_record(gap)
            command = append(desk, record, f"w-{gap}", f"the lost answer, gap {gap}")
            await faults(desk, ambiguous_write_rate=1.0, ambiguous_modes=["reset"])
            with contextlib.suppress(RetriableAPIError):  # applied, answer lost: the sink
                await desk.sink.execute(command)  # marks the command uncertain
            await faults(desk)
            for i in range(gap):
                await desk.other_comment(record, f"someone else's comment {i}")
            await call_with_retries(lambda c=command: desk.sink.execute(c), POLICY)  # type: ignore[misc]
            copies = sum(b.endswith(f"the lost answer, gap {gap}") for b in desk.bodies(record))
            print(row(f"{platform} window: gap {gap} -> copies", str(copies), "1", None))
        # A different command with the very same body, redelivered (attempt 2) within the
        # lookback: the check takes the first for its own, so the second is not written.
        record = await desk.new_record(999)
        first = append(desk, record, "same-1", "ok")
        twin = append(desk, record, "same-2", "ok", attempt=2)
        await desk.sink.execute(first)
        await desk.sink.execute(twin)
        written = sum(b.endswith("ok") for b in desk.bodies(record))
        print(row(f"{platform} window: same body twice -> written", str(written), "2", None))


async def main(appends: int, rate: float, seed: int) -> None:
    print(row("measure", "figure", "target", "ratio"))
    for platform in PLATFORMS:
        for mode in MODES:
            await ambiguous_run(platform, mode, appends, rate, seed)
    for platform in PLATFORMS:
        await window(platform, seed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=120)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.appends, args.rate, args.seed))
