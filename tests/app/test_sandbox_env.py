"""The worker settings ``deskstream sandbox`` prints and writes: loaded the way the README says
(``set -a; . FILE``), they are the settings the worker reads, and they sign in to the very
sandboxes that printed them, as Deskstream's own actor there."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.sandbox_cli import build_sandboxes
from app.sandbox_env import connector_env, env_file_text, printout, write_env_file
from app.settings import Settings, load_settings
from connectors.salesforce.auth import token_failures_counter, token_source_for
from connectors.salesforce.settings import salesforce_settings
from sandboxes.base import PlatformSandbox, load_profile, run_sandboxes
from schemas.errors import ConfigurationError

PLATFORMS = ["zendesk", "zendesk_conversations", "intercom", "salesforce"]


@pytest.fixture
async def served() -> AsyncIterator[list[PlatformSandbox]]:
    built, unavailable = build_sandboxes(
        PLATFORMS, seed=0, faults=load_profile("none"), webhook_target=None
    )
    assert not unavailable
    async with run_sandboxes(built):
        yield built


def sourced(path: Path) -> dict[str, str]:
    """The environment a POSIX shell has after ``set -a; . FILE``, from an empty one."""
    script = 'set -a; . "$1"; set +a; exec env -0'
    done = subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(path)], env={}, capture_output=True, check=True
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs if name.startswith("DESKSTREAM_")}


async def test_env_file_gives_the_worker_settings_that_sign_in(
    served: list[PlatformSandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs = [connector_env(s.platform, s.worker_connector()) for s in served]
    path = tmp_path / "sandbox.env"
    write_env_file(path, env_file_text(envs, header="sandbox-only\ncredentials"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    environment = sourced(path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    # Every sandbox is a connector a worker serves (Zendesk Conversations with its app id).
    assert sorted(settings.connectors) == [
        "intercom",
        "salesforce",
        "zendesk",
        "zendesk_conversations",
    ]
    by_platform = {s.platform: s for s in served}
    for connector_id, connector in settings.connectors.items():
        assert connector == by_platform[connector_id].worker_connector()
    zendesk, intercom = settings.connectors["zendesk"], settings.connectors["intercom"]
    assert zendesk.api_base_url is not None
    assert intercom.api_base_url is not None
    zd_token, ic_token = zendesk.token(), intercom.token()
    assert zd_token is not None
    assert ic_token is not None
    async with httpx.AsyncClient() as http:
        me = await http.get(
            f"{zendesk.api_base_url}/api/v2/users/me",
            auth=(f"{zendesk.api_user}/token", zd_token.get_secret_value()),
        )
        assert me.status_code == 200
        assert str(me.json()["user"]["id"]) == zendesk.service_account_id
        me = await http.get(
            f"{intercom.api_base_url}/me",
            headers={"Authorization": f"Bearer {ic_token.get_secret_value()}"},
        )
        assert me.status_code == 200
        assert me.json()["id"] == intercom.service_account_id
        # Salesforce: the refresh-token flow signs in to the sandbox's org, and the worker
        # ingests from it (CDC over the sandbox's Pub/Sub port, TLS with the sandbox's CA,
        # comment polling, reconciliation).
        crm = salesforce_settings("salesforce", settings.connectors["salesforce"])
        assert sorted(crm.sources) == ["cdc_case", "cdc_contact", "comments", "reconcile"]
        assert crm.sources["cdc_case"].transport == "pubsub"
        described = by_platform["salesforce"].describe()
        assert (crm.pubsub_endpoint, crm.pubsub_tls, str(crm.pubsub_ca_file)) == (
            described["pubsub"],
            True,
            described["pubsub_ca_file"],
        )
        failures = token_failures_counter(CollectorRegistry())
        session = await token_source_for(crm, http, failures=failures).session()
        assert session.org_id == by_platform["salesforce"].describe()["org_id"]
        limits = await http.get(
            f"{session.instance_url}/services/data/v{crm.api_version}/limits",
            headers={"Authorization": f"Bearer {session.access_token}"},
        )
        assert limits.status_code == 200


async def test_the_printout_names_the_file_instead_of_a_secret(
    served: list[PlatformSandbox], tmp_path: Path
) -> None:
    envs = [connector_env(s.platform, s.worker_connector()) for s in served]
    secrets = [v for env in envs for v in env.variables if v.secret]
    names = {v.name.rsplit("__", 1)[1] for v in secrets}
    assert names == {"SECRET", "API_TOKEN", "CLIENT_SECRET", "REFRESH_TOKEN"}
    path = tmp_path / "sandbox.env"
    shown = "\n".join(printout(envs, env_file=path))
    for variable in secrets:
        assert variable.value not in shown
        assert f"{variable.name}=<secret, in {path}>" in shown
    plain = "\n".join(printout(envs, env_file=None))
    for variable in secrets:
        assert plain.count(variable.value) == 1


def test_variable_names_are_the_ones_settings_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.base.settings import ConnectorSettings

    given = ConnectorSettings(platform="zendesk", api_user="a@b.test", rate_limit_per_minute=7)
    for variable in connector_env("support", given).variables:
        monkeypatch.setenv(variable.name, variable.value)
    assert Settings().connectors == {"support": given}


def test_rewriting_narrows_an_open_file_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.env"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o644)
    write_env_file(path, "NEW=1\n")
    assert path.read_text(encoding="utf-8") == "NEW=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["sandbox.env"]  # no temporary left


def test_an_unwritable_place_is_a_readable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"cannot write the env file .*--env-file"):
        write_env_file(blocker / "sandbox.env", "X=1\n")
