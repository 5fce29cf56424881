"""``deskstream demo`` as a user runs it, against the harness's broker and registry: the
canonical events it shows, read again by confluent-kafka's deserializer through the registry
and replayed to Parquet that DuckDB queries, then the AI chat handed to a human and back. The
sync act (``--no-sync`` here) is what ``tests/e2e`` covers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from app.demo_data import story
from app.worker_process import free_port

pytestmark = pytest.mark.kafka

#: the demo's own waits are bounded (worker ready, events read back, each chat step); this is
#: above their usual sum, so a demo that hangs fails here with what it printed and its stacks
DEMO_TIMEOUT_S = 240

#: the story's events by entity type, each shown once (the redelivery is dropped)
STORY = {"case": 3, "contact": 1, "handoff": 1, "message": 2}


def test_a_second_run_posts_new_events_not_redeliveries() -> None:
    ids = [[event["source"]["source_event_id"] for event in story(run=run)] for run in "ab"]
    assert len(set(ids[0])) == len(ids[0]) == sum(STORY.values())
    assert not set(ids[0]) & set(ids[1])


# Above DEMO_TIMEOUT_S: the suite's 300 s would otherwise cut the test before _run_demo can
# show how far the demo got.
@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
def test_the_demo_shows_the_events_through_confluent_kafka_and_duckdb(
    kafka_bootstrap_servers: str, schema_registry_url: str, tmp_path: Path
) -> None:
    env = _demo_env(kafka_bootstrap_servers, schema_registry_url, tmp_path)
    out = _run_demo(["--no-sync", "--web-port", str(free_port())], env, tmp_path)
    sections = dict(re.findall(r"^== (.+?)\n(.*?)(?=^== |\Z)", out, re.M | re.S))
    canonical = next(text for title, text in sections.items() if title.startswith("Canonical"))
    assert canonical.count(" by customer:Maria Lopez event ") == 3
    assert "quarantined" in canonical
    assert " records arrived in " not in canonical, out  # all of them, the redelivery dropped

    confluent = sections["The same events read by confluent-kafka (AvroDeserializer, the registry)"]
    assert "7 events decoded by confluent-kafka's AvroDeserializer" in confluent, out
    assert f"fetched by id from {schema_registry_url}" in confluent
    assert confluent.count(": Confluent framing, schema id ") == 3  # the first three shown

    replay = sections["Replayed to Parquet, queried with DuckDB"]
    assert f"--out {tmp_path / 'demo-replay'}" in replay
    assert "7 rows in 4 files" in replay, out
    table = {row[0]: int(row[1]) for row in re.findall(r"^\s*│ (\w+)\s*│\s*(\d+) │", replay, re.M)}
    assert table == STORY, replay
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet"))
    assert [p.parts[2] for p in files] == [f"entity_type={t}" for t in sorted(STORY)]

    chat = sections["AI chat → a human in Zendesk's agent workspace, live (Conversations sandbox)"]
    for step in (
        "✓ agent workspace: conversation opened, the summary first: Handed over by the AI agent",
        "✓ agent workspace: Maria's message arrived",
        "chat window ← Sam: Hi Maria, I am Sam.",
        "chat window ← Sam: Refunded: [image/png: https://files.example.com/",
        "chat window ← (ended) ",
        "✓ released: no integration holds the conversation",
    ):
        assert step in chat, chat


def test_a_demo_stopped_with_sigterm_stops_its_worker(
    kafka_bootstrap_servers: str, schema_registry_url: str, tmp_path: Path
) -> None:
    env = _demo_env(kafka_bootstrap_servers, schema_registry_url, tmp_path)
    demo = _start_demo(["--no-sync", "--web-port", str(free_port())], env, subprocess.STDOUT)
    try:
        assert demo.stdout is not None
        printed = []
        for line in demo.stdout:  # until the worker is up (or the demo ends)
            printed.append(line)
            if line.startswith("  ready: topics exist"):
                break
        assert _group(demo.pid) != [demo.pid], "".join(printed)  # the worker runs
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
        # What it printed, the traceback included, says where a stop went wrong.
        assert demo.returncode == 128 + signal.SIGTERM, "".join(printed) + rest
        assert _group(demo.pid) == []  # its worker stopped with it, nothing left behind
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)


def _start_demo(args: list[str], env: dict[str, str], stderr: int) -> subprocess.Popen[str]:
    """``deskstream demo`` in a process group of its own: the workers it starts are in it too,
    so the whole group can be looked at or killed."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", "demo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )


def _group(pgid: int) -> list[int]:
    """The processes left in a process group."""
    found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _demo_env(bootstrap: str, registry: str, state_dir: Path) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DESKSTREAM_SCHEMA_REGISTRY_URL": registry,
        "DESKSTREAM_APP_ID": f"deskstream-demo-{run}",
        "DESKSTREAM_TOPIC_PREFIX": f"demo-{run}",
        "DESKSTREAM_PARTITIONS": "2",
        "DESKSTREAM_REPLICATION_FACTOR": "1",
        "DESKSTREAM_STATE_DIR": str(state_dir),
    }


def _run_demo(args: list[str], env: dict[str, str], state_dir: Path) -> str:
    """Run ``deskstream demo`` and return what it printed. On a timeout the demo is asked for
    its threads' stacks (SIGUSR1), then its whole process group is killed (its workers with
    it: killing the demo alone would leave them running), and the failure shows how far the
    demo got, where it was stuck and its workers' last log lines."""
    demo = _start_demo(args, env, subprocess.PIPE)
    try:
        out, err = demo.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGUSR1)  # the demo prints its threads' stacks on stderr
        time.sleep(2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        out, err = demo.communicate()
        logs = "\n".join(
            f"--- {log}\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted(state_dir.rglob("*.log"))
        )
        pytest.fail(
            f"the demo did not finish in {DEMO_TIMEOUT_S} s; it printed:\n{out}\n{err[-8000:]}"
            f"\nits workers' logs end with:\n{logs}"
        )
    assert demo.returncode == 0, f"{out[-3000:]}\n{err[-3000:]}"
    return out
