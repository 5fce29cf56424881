"""``deskstream sandbox``: serve the offline platform sandboxes until interrupted.

Each platform listens on ``--port-base`` + its offset (zendesk 8100, zendesk_conversations
8101, intercom 8102, salesforce 8103 by default; ``--port-base 0`` picks free ports). A
platform whose sandbox is missing or broken is reported and skipped, never fatal unless none
is left. Webhooks go to ``--webhook-target``; ``{platform}`` in it is replaced by the
platform's name, e.g. ``http://127.0.0.1:8000/webhooks/{platform}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path

import click
import yaml
from pydantic import ValidationError

from connectors.base.sandbox import FaultProfile, PlatformSandbox, load_profile, run_sandboxes
from connectors.base.sandbox.registry import (
    DEFAULT_PORT_OFFSETS,
    SANDBOXES,
    SandboxUnavailableError,
    load_sandbox_class,
)

__all__ = ["sandbox"]

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
                    seed=seed, faults=faults, webhook_target=webhook_target, webhook_concurrency=4
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
        click.echo(json.dumps({"ready": True, "urls": {n: running.url(n) for n in running.ports}}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)


@click.command()
@click.option(
    "--platforms",
    default=",".join(SANDBOXES),
    show_default=True,
    help="Comma-separated platforms to serve.",
)
@click.option(
    "--webhook-target",
    default=None,
    help="Where webhooks go; {platform} is replaced by the platform name. None: no webhooks.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for ids and faults.")
@click.option(
    "--faults",
    "faults_name",
    default="none",
    show_default=True,
    help="Fault profile: none, flaky, outage, chaos, or a .json/.yaml file of FaultProfile fields.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port-base", type=int, default=8100, show_default=True, help="First port; 0 = free ports."
)
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (for scripts); default: until Ctrl-C.",
)
def sandbox(
    platforms: str,
    webhook_target: str | None,
    seed: int,
    faults_name: str,
    host: str,
    port_base: int,
    duration: float | None,
) -> None:
    """Serve offline, faithful Zendesk, Zendesk Conversations, Intercom and Salesforce APIs."""
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
    asyncio.run(_serve(built, unavailable, host=host, port_base=port_base, duration=duration))
