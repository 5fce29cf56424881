"""``deskstream sandbox``: platform discovery through the registry, options, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.sandbox_cli import sandbox
from sandboxes.base.registry import SANDBOXES


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(sandbox, [*args, "--port-base", "0", "--duration", "0.2"])
    return result.exit_code, result.output


def test_serves_the_chosen_platform_and_prints_how_to_reach_it() -> None:
    code, output = run("--platforms", "intercom", "--seed", "3", "--faults", "flaky")
    assert code == 0, output
    ready = json.loads(output.strip().splitlines()[-1])
    assert ready["ready"] is True
    assert list(ready["urls"]) == ["intercom"]
    # What a worker needs, under the names it reads; each secret shown once.
    assert "DESKSTREAM_CONNECTORS__intercom__API_TOKEN=sandbox-intercom-token" in output
    assert output.count("sandbox-intercom-token") == 1
    assert "DESKSTREAM_CONNECTORS__intercom__SECRET=sandbox-intercom-client-secret" in output


def test_env_file_holds_the_secrets_the_printout_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.env"
    code, output = run("--platforms", "intercom,zendesk", "--env-file", str(path))
    assert code == 0, output
    written = path.read_text(encoding="utf-8")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "SANDBOX-ONLY credentials" in written
    for secret in ("sandbox-intercom-token", "sandbox-api-token", "sandbox-zendesk-webhook"):
        assert secret in written
        assert secret not in output
    assert f"DESKSTREAM_CONNECTORS__zendesk__API_TOKEN=<secret, in {path}>" in output


def test_missing_platform_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SANDBOXES, "zendesk", "sandboxes.not_written_yet:Nope")
    code, output = run("--platforms", "zendesk,intercom")
    assert code == 0, output
    assert "zendesk                unavailable:" in output
    assert "cannot be imported" in output


def test_nothing_to_serve_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SANDBOXES, "zendesk", "sandboxes.not_written_yet:Nope")
    code, output = run("--platforms", "zendesk")
    assert code == 1
    assert "no sandbox could be started" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--platforms", "fax"), "unknown platform(s) fax"),
        (("--faults", "doom"), "unknown fault profile 'doom'"),
    ],
    ids=["unknown-platform", "unknown-profile"],
)
def test_bad_options_exit_2(args: tuple[str, ...], message: str) -> None:
    code, output = run(*args)
    assert code == 2
    assert message in output


def test_fault_profile_from_a_file(tmp_path: Path) -> None:
    profile = tmp_path / "slow.yaml"
    profile.write_text("latency_ms: 5\nerror_rate: 0.01\n", encoding="utf-8")
    code, output = run("--platforms", "intercom", "--faults", str(profile))
    assert code == 0, output
    broken = tmp_path / "broken.json"
    broken.write_text('{"error_rate": 7}', encoding="utf-8")
    code, output = run("--platforms", "intercom", "--faults", str(broken))
    assert code == 2
    assert "not a valid fault profile" in output
