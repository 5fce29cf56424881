"""The fault middleware: seeded 5xx, outage windows, 429 bursts, latency, admin exemption."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from sandboxes.base import (
    PROFILES,
    FaultProfile,
    ManualClock,
    load_profile,
    run_sandboxes,
)
from sandboxes.base.faults import PERSON_HEADER
from tests.sandboxes.base.conftest import NotesSandbox

Serve = Callable[..., Any]


async def statuses(profile: FaultProfile, *, seed: int, n: int) -> list[int]:
    sandbox = NotesSandbox.create(seed=seed, faults=profile, clock=ManualClock())
    async with (
        run_sandboxes([sandbox]) as running,
        httpx.AsyncClient(base_url=running.url("notes")) as http,
    ):
        return [(await http.get("/notes")).status_code for _ in range(n)]


@pytest.fixture
async def notes_http(clock: ManualClock) -> AsyncIterator[tuple[NotesSandbox, httpx.AsyncClient]]:
    sandbox = NotesSandbox.create(seed=1, clock=clock)
    async with (
        run_sandboxes([sandbox]) as running,
        httpx.AsyncClient(base_url=running.url("notes")) as http,
    ):
        yield sandbox, http


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_error_rate_is_deterministic_per_seed() -> None:
    profile = FaultProfile(error_rate=0.2)
    first = await statuses(profile, seed=11, n=300)
    again = await statuses(profile, seed=11, n=300)
    other = await statuses(profile, seed=12, n=300)
    errors = sum(s >= 500 for s in first)
    assert first == again
    assert first != other
    assert 30 <= errors <= 90  # 60 expected; a broken rate lands far outside
    assert set(first) <= {200, 500, 502, 503}


async def test_injected_errors_use_the_platform_error_body(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    _, http = notes_http
    await http.put("/_sandbox/faults", json={"error_rate": 1.0, "error_statuses": [502]})
    response = await http.get("/notes")
    assert response.status_code == 502
    assert response.json() == {
        "notes_error": "bad_gateway",
        "message": "An internal error occurred.",
    }


async def test_outage_window_follows_the_clock(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient], clock: ManualClock
) -> None:
    _, http = notes_http
    await http.put("/_sandbox/faults", json={"outage_windows": [[10, 20]]})
    seen = []
    for step in (0, 10, 9.9, 0.2, 100):
        clock.advance(step)
        seen.append((await http.get("/notes")).status_code)
    assert seen == [200, 503, 503, 200, 200]
    # Re-applying the profile restarts its windows from now.
    await http.put("/_sandbox/faults", json={"profile": "outage"})
    clock.advance(45)
    assert (await http.get("/notes")).status_code == 503
    state = (await http.get("/_sandbox/state")).json()
    assert state["faults"]["outages"] == 3


async def test_429_bursts_follow_the_cycle(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    _, http = notes_http
    await http.put("/_sandbox/faults", json={"burst_429_every": 3, "burst_429_length": 2})
    seen = [(await http.get("/notes")).status_code for _ in range(10)]
    assert seen == [200, 200, 200, 429, 429, 200, 200, 200, 429, 429]
    limited = await http.get("/notes")  # position 10: served again
    assert limited.status_code == 200


async def test_latency_waits_on_the_clock(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient], clock: ManualClock
) -> None:
    _, http = notes_http
    await http.put("/_sandbox/faults", json={"latency_ms": 250})
    before = clock.monotonic()
    for _ in range(4):
        await http.get("/notes")
    assert clock.monotonic() - before == pytest.approx(1.0)


async def test_admin_endpoints_are_never_faulted(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    _, http = notes_http
    await http.put("/_sandbox/faults", json={"error_rate": 1.0, "outage_windows": [[0, 999]]})
    assert (await http.get("/notes")).status_code == 503
    for path in ("/_sandbox/state", "/_sandbox/snapshot", "/_sandbox/faults"):
        assert (await http.get(path)).status_code == 200


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_named_profiles_load(name: str) -> None:
    assert load_profile(name).name == name


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="ambiguous, burst, chaos, flaky, none, outage"):
        load_profile("doom")


@pytest.mark.parametrize(
    "fields",
    [
        {"error_rate": 1.5},
        {"outage_windows": [[20, 10]]},
        {"error_statuses": [404]},
        {"burst_429_length": 3},
        {"latency_ms": -1},
        {"surprise": True},
        {"ambiguous_write_rate": 1.1},
        {"ambiguous_modes": []},
        {"ambiguous_modes": ["explode"]},
        {"ambiguous_delay_s": 0},
    ],
    ids=[
        "rate-over-1",
        "window-backwards",
        "non-5xx",
        "burst-without-every",
        "negative",
        "extra",
        "ambiguous-rate-over-1",
        "no-ambiguous-mode",
        "unknown-ambiguous-mode",
        "no-delay",
    ],
)
def test_invalid_profiles_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FaultProfile.model_validate(fields)


async def test_put_faults_refuses_bad_profiles(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    _, http = notes_http
    assert (await http.put("/_sandbox/faults", json={"profile": "doom"})).status_code == 400
    assert (await http.put("/_sandbox/faults", json={"error_rate": 2})).status_code == 400
    assert (await http.put("/_sandbox/faults", content=b"[1]")).status_code == 400
    assert (await http.get("/_sandbox/faults")).json()["name"] == "none"


# -- ambiguous writes: applied, then the answer lost ---------------------------------------


async def _ambiguous(
    http: httpx.AsyncClient, mode: str, *, rate: float = 1.0, delay_s: float = 30.0
) -> None:
    profile = {
        "ambiguous_write_rate": rate,
        "ambiguous_modes": [mode],
        "ambiguous_delay_s": delay_s,
    }
    assert (await http.put("/_sandbox/faults", json=profile)).status_code == 200


async def _faults(http: httpx.AsyncClient) -> dict[str, Any]:
    state: dict[str, Any] = (await http.get("/_sandbox/state")).json()["faults"]
    return state


async def test_ambiguous_5xx_applies_the_write_then_answers_an_error(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = notes_http
    await _ambiguous(http, "5xx")
    answers = [await http.post("/notes", json={"text": f"n{i}"}) for i in range(5)]
    assert {a.status_code for a in answers} <= {500, 502, 503}
    assert all(a.json()["message"] == "An internal error occurred." for a in answers)
    assert sandbox.notes == ["n0", "n1", "n2", "n3", "n4"]  # every one of them landed
    faults = await _faults(http)
    assert faults["ambiguous_writes"] == 5
    assert faults["ambiguous_by_mode"] == {"5xx": 5}
    assert sum(faults["injected_by_status"].values()) == 5


async def test_people_are_never_given_an_ambiguous_answer(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    # A person whose click got no answer looks before trying again; the polite transport
    # that plays them would write twice, a duplicate that is theirs, not the integration's.
    sandbox, http = notes_http
    await _ambiguous(http, "5xx")
    answers = [
        await http.post("/notes", json={"text": f"p{i}"}, headers={PERSON_HEADER: "1"})
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert sandbox.notes == ["p0", "p1", "p2"]
    assert (await _faults(http))["ambiguous_writes"] == 0


async def test_ambiguous_reset_applies_the_write_then_drops_the_connection(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = notes_http
    await _ambiguous(http, "reset")
    for i in range(3):
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/notes", json={"text": f"n{i}"})
    assert sandbox.notes == ["n0", "n1", "n2"]
    assert (await _faults(http))["ambiguous_by_mode"] == {"reset": 3}


async def test_ambiguous_timeout_applies_the_write_then_answers_too_late(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = notes_http
    await _ambiguous(http, "timeout", delay_s=60.0)
    for i in range(3):
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/notes", json={"text": f"n{i}"}, timeout=0.2)
    assert sandbox.notes == ["n0", "n1", "n2"]
    assert (await _faults(http))["ambiguous_by_mode"] == {"timeout": 3}


async def test_reads_are_never_ambiguous(
    notes_http: tuple[NotesSandbox, httpx.AsyncClient],
) -> None:
    _, http = notes_http
    await _ambiguous(http, "reset")
    assert [(await http.get("/notes")).status_code for _ in range(20)] == [200] * 20
    assert (await _faults(http))["ambiguous_writes"] == 0


async def _ambiguous_run(seed: int, *, reads_between: int) -> tuple[list[str], list[str], int]:
    """Sixty writes at a 30 % ambiguous rate: what each answer was, what landed, the count."""
    sandbox = NotesSandbox.create(
        seed=seed,
        clock=ManualClock(),
        faults=FaultProfile(ambiguous_write_rate=0.3, ambiguous_modes=("5xx", "reset")),
    )
    outcomes: list[str] = []
    async with (
        run_sandboxes([sandbox]) as running,
        httpx.AsyncClient(base_url=running.url("notes")) as http,
    ):
        for i in range(60):
            for _ in range(reads_between):
                await http.get("/notes")
            try:
                outcomes.append(
                    str((await http.post("/notes", json={"text": f"n{i}"})).status_code)
                )
            except httpx.RemoteProtocolError:
                outcomes.append("reset")
        counted = (await _faults(http))["ambiguous_writes"]
    return outcomes, sandbox.notes, counted


async def test_ambiguous_writes_are_deterministic_per_seed_and_all_applied() -> None:
    first, notes, counted = await _ambiguous_run(5, reads_between=0)
    again, _, _ = await _ambiguous_run(5, reads_between=0)
    with_reads, _, _ = await _ambiguous_run(5, reads_between=2)
    other, _, _ = await _ambiguous_run(6, reads_between=0)
    lost = sum(o != "201" for o in first)
    assert first == again == with_reads  # reads draw nothing: the same writes are hit
    assert first != other
    assert 8 <= lost <= 30  # 18 expected; a broken rate lands far outside
    assert counted == lost
    assert {"reset", "201"} < set(first)
    assert notes == [f"n{i}" for i in range(60)]  # applied whatever the answer said


def test_burst_profile_mixes_429s_jitter_webhook_noise_and_ambiguous_writes() -> None:
    burst = load_profile("burst")
    assert burst.burst_429_every
    assert burst.latency_jitter_ms
    assert burst.webhook_duplicate_rate
    assert burst.webhook_redelivery_rate
    assert 0.03 <= burst.ambiguous_write_rate <= 0.1
    assert set(burst.ambiguous_modes) == {"5xx", "reset", "timeout"}
    only = load_profile("ambiguous")
    assert only.ambiguous_write_rate
    assert not (only.error_rate)
    assert not (only.burst_429_every)
