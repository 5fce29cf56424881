"""run_sandboxes, the admin API, PlatformSandbox.create and the registry."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from sandboxes.base import LoopbackReceiver, ManualClock, run_sandboxes
from sandboxes.base.registry import (
    SANDBOXES,
    SandboxUnavailableError,
    load_sandbox_class,
)
from sandboxes.intercom import IntercomSandbox
from tests.sandboxes.base.conftest import MemosSandbox, NotesSandbox


async def test_each_platform_gets_its_own_ephemeral_port() -> None:
    notes, memos = NotesSandbox.create(), MemosSandbox.create()
    async with run_sandboxes([notes, memos]) as running:
        assert running.ports["notes"] != running.ports["memos"]
        assert notes.context.base_url == running.url("notes")
        async with httpx.AsyncClient() as http:
            created = await http.post(f"{running.url('memos')}/notes", json={"text": "m"})
            listed = await http.get(f"{running.url('notes')}/notes")
        assert created.status_code == 201
        assert listed.json() == {"notes": []}
        assert memos.notes == ["m"]
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{running.url('notes')}/notes")


async def test_same_platform_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="given twice"):
        async with run_sandboxes([NotesSandbox.create(), NotesSandbox.create()]):
            pass


async def test_admin_reset_snapshot_and_state() -> None:
    async with LoopbackReceiver() as rx:
        sandbox = NotesSandbox.create(webhook_target=f"{rx.url}/hooks/{{platform}}")
        async with (
            run_sandboxes([sandbox]) as running,
            httpx.AsyncClient(base_url=running.url("notes")) as http,
        ):
            for text in ("a", "b"):
                await http.post("/notes", json={"text": text})
            await running.drain_webhooks()
            assert (await http.get("/_sandbox/snapshot")).json() == {"notes": ["a", "b"]}
            state = (await http.get("/_sandbox/state")).json()
            assert state["platform"] == "notes"
            assert state["faults"]["requests"] == 2
            assert state["webhooks"]["sent"] == 2
            assert state["webhooks"]["target"] == f"{rx.url}/hooks/notes"
            assert (await http.post("/_sandbox/reset")).json() == {
                "reset": True,
                "platform": "notes",
            }
            assert (await http.get("/_sandbox/snapshot")).json() == {"notes": []}
            assert (await http.get("/_sandbox/state")).json()["webhooks"]["sent"] == 0
    assert [d.path for d in rx.deliveries] == ["/hooks/notes", "/hooks/notes"]


async def test_clock_endpoint_moves_only_a_manual_clock() -> None:
    manual = NotesSandbox.create(clock=ManualClock())
    real = MemosSandbox.create()
    async with run_sandboxes([manual, real]) as running, httpx.AsyncClient() as http:
        moved = await http.post(f"{running.url('notes')}/_sandbox/clock", json={"advance_s": 90})
        assert moved.status_code == 200
        assert moved.json()["now"] == "2025-01-01T00:01:30+00:00"
        refused = await http.post(f"{running.url('memos')}/_sandbox/clock", json={"advance_s": 1})
        assert refused.status_code == 409


async def test_fixed_port_is_honoured() -> None:
    async with run_sandboxes([NotesSandbox.create()]) as first:
        port = first.ports["notes"]
    async with run_sandboxes([NotesSandbox.create()], ports={"notes": port}) as second:
        assert second.ports["notes"] == port
        assert second.url("notes") == f"http://127.0.0.1:{port}"


async def test_sandbox_start_and_stop_hooks_run() -> None:
    events: list[str] = []

    class Hooked(NotesSandbox):
        platform = "hooked"

        async def start(self) -> None:
            events.append("start")

        async def stop(self) -> None:
            events.append("stop")

    async with run_sandboxes([Hooked.create()]):
        await asyncio.sleep(0)
        assert events == ["start"]
    assert events == ["start", "stop"]


def test_registry_resolves_a_written_platform() -> None:
    assert load_sandbox_class("intercom") is IntercomSandbox
    assert set(SANDBOXES) == {"zendesk", "zendesk_conversations", "intercom", "salesforce"}


def test_registry_reports_unknown_and_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SandboxUnavailableError, match="no sandbox for 'fax'"):
        load_sandbox_class("fax")
    monkeypatch.setitem(SANDBOXES, "fax", "sandboxes.fax:FaxSandbox")
    with pytest.raises(SandboxUnavailableError, match="cannot be imported"):
        load_sandbox_class("fax")
    monkeypatch.setitem(SANDBOXES, "notes", "tests.sandboxes.base.conftest:Missing")
    assert load_sandbox_class("notes") is NotesSandbox  # found by its platform name


def test_state_json_is_serialisable() -> None:
    sandbox = NotesSandbox.create(seed=4, faults="flaky")
    assert json.loads(json.dumps(sandbox.snapshot())) == {"notes": []}
    assert sandbox.context.faults.name == "flaky"
    assert sandbox.context.seed == 4
