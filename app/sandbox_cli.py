"""``deskstream sandbox``: serve the offline platform sandboxes, or play traffic against them.

``deskstream sandbox [OPTIONS]`` (also ``deskstream sandbox serve [OPTIONS]``) serves until
interrupted. Each platform listens on ``--port-base`` + its offset (zendesk 8100,
zendesk_conversations 8101, intercom 8102, salesforce 8103 by default; ``--port-base 0`` picks
free ports). A platform whose sandbox is missing or broken is reported and skipped, never
fatal unless none is left. Webhooks go to ``--webhook-target``; ``{platform}`` in it is
replaced by the platform's name, e.g. ``http://127.0.0.1:6066/webhooks/{platform}``.

Once serving it prints, for every platform, the worker's settings that connect it there
(``DESKSTREAM_CONNECTORS__<platform>__*``, :mod:`app.sandbox_env`); ``--env-file PATH``
writes them to a file only its owner can read, and the printout then names the file instead
of showing each secret. The accounts carry what the shipped rules (``config/*.yaml``) need
(:mod:`app.sandbox_accounts`), so ``deskstream config check`` passes against them.

``deskstream sandbox traffic --rate N --duration S`` plays a seeded contact-center day
(``sandboxes.base.traffic``) against running sandboxes (by default the ports above),
prints progress and a summary table, and can write the ledger of what it created as JSON.
It exits 1 when a conversation failed unexpectedly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
import yaml
from click.core import ParameterSource
from pydantic import ValidationError

from app.sandbox_accounts import account_options
from app.sandbox_env import connector_env, env_file_text, printout, write_env_file
from sandboxes.base import FaultProfile, PlatformSandbox, load_profile, run_sandboxes
from sandboxes.base.registry import (
    DEFAULT_PORT_OFFSETS,
    SANDBOXES,
    SandboxUnavailableError,
    load_sandbox_class,
)

__all__ = ["sandbox"]

_F = TypeVar("_F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)


def _fault_profile(value: str) -> FaultProfile:
    """A named profile, or a JSON/YAML file holding FaultProfile fields."""
    path = Path(value)
    if path.suffix in {".json", ".yaml", ".yml"}:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return FaultProfile.model_validate({"name": path.stem, **(data or {})})
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
        except (yaml.YAMLError, ValidationError, TypeError) as exc:
            raise click.BadParameter(f"{path} is not a valid fault profile: {exc}") from exc
    try:
        return load_profile(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _platforms(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SANDBOXES]
    if unknown or not names:
        known = ",".join(SANDBOXES)
        raise click.BadParameter(f"unknown platform(s) {','.join(unknown)}; choose from {known}")
    return list(dict.fromkeys(names))


def build_sandboxes(
    names: list[str], *, seed: int, faults: FaultProfile, webhook_target: str | None
) -> tuple[list[PlatformSandbox], dict[str, str]]:
    """Instantiate what can be; returns the sandboxes and, by name, why others cannot run."""
    built: list[PlatformSandbox] = []
    unavailable: dict[str, str] = {}
    for name in names:
        try:
            cls = load_sandbox_class(name)
            built.append(
                cls.create(
                    seed=seed,
                    faults=faults,
                    webhook_target=webhook_target,
                    webhook_concurrency=4,
                    **account_options(name),
                )
            )
        except SandboxUnavailableError as exc:
            unavailable[name] = str(exc)
        except Exception as exc:  # a broken sandbox must not take the others down
            logger.exception("sandbox failed to build platform=%s", name)
            unavailable[name] = f"failed to start: {type(exc).__name__}: {exc}"
    return built, unavailable


async def _serve(
    sandboxes: list[PlatformSandbox],
    unavailable: dict[str, str],
    *,
    host: str,
    port_base: int,
    duration: float | None,
    env_file: Path | None,
) -> None:
    ports = {
        s.platform: 0 if port_base == 0 else port_base + DEFAULT_PORT_OFFSETS.get(s.platform, 0)
        for s in sandboxes
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with run_sandboxes(sandboxes, host=host, ports=ports) as running:
        for sandbox in sandboxes:
            details = " ".join(f"{k}={v}" for k, v in sandbox.describe().items())
            click.echo(
                f"{sandbox.platform:<22} {running.url(sandbox.platform):<26} "
                f"admin={running.url(sandbox.platform)}/_sandbox/state {details}".rstrip()
            )
        for name, reason in unavailable.items():
            click.echo(f"{name:<22} unavailable: {reason}")
        envs = [connector_env(s.platform, s.worker_connector()) for s in sandboxes]
        if env_file is not None:
            write_env_file(
                env_file, env_file_text(envs, header=_env_file_header(sandboxes, env_file))
            )
        for line in printout(envs, env_file=env_file):
            click.echo(line)
        if not any(s.context.webhooks for s in sandboxes):
            click.echo(
                "# no --webhook-target: the sandboxes send no webhooks; give "
                "--webhook-target http://127.0.0.1:6066/webhooks/{platform} to reach a worker"
            )
        click.echo(json.dumps({"ready": True, "urls": {n: running.url(n) for n in running.ports}}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)


def _env_file_header(sandboxes: list[PlatformSandbox], path: Path) -> str:
    seeds = {s.context.seed for s in sandboxes}
    return (
        "Worker settings for the Deskstream sandboxes, written by `deskstream sandbox` "
        f"(seed {', '.join(map(str, sorted(seeds)))}).\n"
        "SANDBOX-ONLY credentials: they open the offline sandboxes, nothing real. Never use "
        "this file for a real account.\n"
        f"Load it into a shell with: set -a; . {path}; set +a"
    )


def _serve_options(command: _F) -> _F:
    """The options of serving, shared by ``sandbox`` itself and ``sandbox serve``."""
    options = [
        click.option(
            "--platforms",
            default=",".join(SANDBOXES),
            show_default=True,
            help="Comma-separated platforms to serve.",
        ),
        click.option(
            "--webhook-target",
            default=None,
            help="Where webhooks go; {platform} is replaced by the platform name. None: none.",
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Seed for ids and faults."
        ),
        click.option(
            "--faults",
            "faults_name",
            default="none",
            show_default=True,
            help="Fault profile: none, flaky, outage, chaos, ambiguous (writes applied, their "
            "answer lost), burst, or a .json/.yaml file of FaultProfile fields.",
        ),
        click.option("--host", default="127.0.0.1", show_default=True),
        click.option(
            "--port-base",
            type=int,
            default=8100,
            show_default=True,
            help="First port; 0 = free ports.",
        ),
        click.option(
            "--duration",
            type=float,
            default=None,
            help="Stop after this many seconds (for scripts); default: until Ctrl-C.",
        ),
        click.option(
            "--env-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Also write the worker's settings for these sandboxes to this file (mode "
            "0600; sandbox-only credentials); the printout then names it instead of the secrets.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_serve(
    platforms: str,
    webhook_target: str | None,
    seed: int,
    faults_name: str,
    host: str,
    port_base: int,
    duration: float | None,
    env_file: Path | None,
) -> None:
    names = _platforms(platforms)
    faults = _fault_profile(faults_name)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
    )
    built, unavailable = build_sandboxes(
        names, seed=seed, faults=faults, webhook_target=webhook_target
    )
    if not built:
        for name, reason in unavailable.items():
            click.echo(f"{name:<22} unavailable: {reason}", err=True)
        raise click.ClickException("no sandbox could be started")
    asyncio.run(
        _serve(
            built,
            unavailable,
            host=host,
            port_base=port_base,
            duration=duration,
            env_file=env_file,
        )
    )


@click.group(invoke_without_command=True)
@_serve_options
@click.pass_context
def sandbox(ctx: click.Context, /, **options: Any) -> None:
    """Serve offline, faithful Zendesk, Zendesk Conversations, Intercom and Salesforce APIs
    (the default, same as 'serve'), or play contact-center traffic against them ('traffic')."""
    if ctx.invoked_subcommand is None:
        _run_serve(**options)
        return
    given = [
        f"--{name.replace('_', '-')}"
        for name in options
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} configure serving; give them after "
            f"'{ctx.invoked_subcommand}' if it takes them"
        )


@sandbox.command("serve")
@_serve_options
def serve(**options: Any) -> None:
    """Serve the sandboxes until interrupted (what 'deskstream sandbox' does)."""
    _run_serve(**options)


# -- traffic ----------------------------------------------------------------------------------


async def _unreachable(urls: dict[str, str]) -> dict[str, str]:
    """Platforms nothing answers at; any HTTP answer counts as reachable."""
    missing: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=3.0) as http:
        for name, url in urls.items():
            try:
                await http.get(url)
            except httpx.TransportError as exc:
                missing[name] = f"{url} ({type(exc).__name__})"
    return missing


@sandbox.command("traffic")
@click.option("--rate", type=float, required=True, help="Conversations per second (Poisson).")
@click.option("--duration", type=float, required=True, help="Seconds during which they arrive.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same day.")
@click.option(
    "--speed",
    type=float,
    default=60.0,
    show_default=True,
    help="Human delays are divided by this (60: a simulated minute per second).",
)
@click.option(
    "--platforms",
    default=",".join(SANDBOXES),
    show_default=True,
    help="Platforms to use; scenarios needing others are not drawn.",
)
@click.option("--population", type=int, default=200, show_default=True, help="Customers.")
@click.option(
    "--concurrency", type=int, default=200, show_default=True, help="Open conversations at most."
)
@click.option(
    "--mirror-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds the Zendesk agent waits for the sync to mirror an escalation; 0: no sync.",
)
@click.option(
    "--drain",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to let open conversations finish after the last arrival.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="For the default URLs.")
@click.option(
    "--port-base", type=int, default=8100, show_default=True, help="As given to 'sandbox'."
)
@click.option("--intercom-url", default=None, help="Default: from --host/--port-base.")
@click.option("--zendesk-url", default=None)
@click.option("--zendesk-conversations-url", "sunshine_url", default=None)
@click.option("--salesforce-url", default=None)
@click.option(
    "--zendesk-agent-token",
    default=None,
    help="OAuth token of the human Zendesk agent (default: the sandbox admin's email with "
    "the account API token).",
)
@click.option(
    "--intercom-connector-id",
    default="intercom",
    show_default=True,
    help="The sync's Intercom connector id (escalations are found by their link id).",
)
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--progress-every", type=float, default=1.0, show_default=True)
def traffic(**options: Any) -> None:
    """Play a seeded contact-center day against running sandboxes and summarise it."""
    from sandboxes.base.traffic import Targets, TrafficGenerator, sandbox_url
    from sandboxes.zendesk.actors import oauth_auth

    names = _platforms(options["platforms"])
    if options["rate"] <= 0 or options["duration"] <= 0 or options["speed"] <= 0:
        raise click.BadParameter("--rate, --duration and --speed must be positive")
    given = {
        "intercom": options["intercom_url"],
        "zendesk": options["zendesk_url"],
        "zendesk_conversations": options["sunshine_url"],
        "salesforce": options["salesforce_url"],
    }
    urls = {
        name: given[name] or sandbox_url(name, host=options["host"], port_base=options["port_base"])
        for name in names
    }
    credentials = {"intercom_connector_id": options["intercom_connector_id"]}
    if options["zendesk_agent_token"]:
        credentials["zendesk_agent_auth"] = oauth_auth(options["zendesk_agent_token"])
    targets = Targets(**credentials).with_urls(urls)
    missing = asyncio.run(_unreachable(urls))
    if missing:
        where = "; ".join(f"{name} at {url}" for name, url in missing.items())
        raise click.ClickException(
            f"nothing answers for {where}: start them with 'deskstream sandbox' or pass --*-url"
        )
    generator = TrafficGenerator(
        targets,
        rate=options["rate"],
        duration=options["duration"],
        seed=options["seed"],
        speed=options["speed"],
        population=options["population"],
        concurrency=options["concurrency"],
        platforms=names,
        mirror_timeout=options["mirror_timeout"],
        drain_timeout=options["drain"],
    )
    click.echo(
        f"planned {len(generator.day.arrivals)} conversations over {options['duration']:g}s "
        f"(seed {options['seed']}, speed {options['speed']:g}) on {', '.join(names)}"
    )
    report = asyncio.run(
        generator.run(
            on_progress=lambda stats, elapsed: click.echo(stats.progress_line(elapsed)),
            progress_every=options["progress_every"],
        )
    )
    click.echo(report.table())
    if options["ledger_path"] is not None:
        options["ledger_path"].write_text(
            json.dumps(report.ledger.as_dict(), indent=2), encoding="utf-8"
        )
        click.echo(f"ledger written to {options['ledger_path']}")
    if report.stats.errors:
        raise click.ClickException(f"{report.stats.errors} conversation(s) failed unexpectedly")
