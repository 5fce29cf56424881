"""Every rules file shipped in ``config/`` passes ``deskstream config check`` against the
sandboxes, run as a new user runs them (README, "First run with the sandboxes"): the
``deskstream sandbox`` command writes its env file, a shell loads it, and ``deskstream config
check`` runs in that environment. A file added to ``config/`` later is checked too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


def _clean_environment() -> dict[str, str]:
    """This process's environment without Deskstream's settings, so nothing but the env
    file configures the commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKSTREAM_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("first-run") / "sandbox.env"
    command = [sys.executable, "-m", "app", "sandbox", "--port-base", "0", "--env-file", str(path)]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=_clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as sandboxes:
        try:
            assert sandboxes.stdout is not None
            for line in sandboxes.stdout:  # the last line it prints once serving
                if line.startswith('{"ready"'):
                    assert json.loads(line)["ready"] is True
                    break
            else:
                pytest.fail(f"deskstream sandbox exited ({sandboxes.wait()}) before serving")
            yield path
        finally:
            sandboxes.terminate()
            sandboxes.wait(timeout=30)


def test_config_folder_holds_rules() -> None:
    assert SHIPPED, "config/*.yaml matched nothing: the check below would test no file"


@pytest.mark.parametrize("rules", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_rules_pass_config_check_against_the_sandboxes(env_file: Path, rules: Path) -> None:
    script = 'set -a; . "$1"; set +a; exec "$2" -m app config check'
    env = _clean_environment() | {"DESKSTREAM_SYNC_CONFIG": str(rules)}
    done = subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(env_file), sys.executable],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{rules}: 0 error(s), 0 warning(s)" in output, output
