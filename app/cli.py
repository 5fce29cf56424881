"""The ``deskstream`` command line.

Each command group lives beside the code it drives (``app.kafka_local.cli``, ``app.topics_cli``
...) and is only imported when its command runs, so ``deskstream --help`` stays instant and a
broken optional part never takes the whole CLI down.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from schemas.errors import DeskstreamError

__all__ = ["main"]

# command name -> "module:attribute" of its click command or group
_COMMANDS: dict[str, str] = {
    "kafka": "app.kafka_local.cli:kafka",
    "topics": "app.topics_cli:topics",
    "worker": "app.worker_cli:worker",
    "demo": "app.demo:demo",
    "sandbox": "app.sandbox_cli:sandbox",
    "audit": "app.audit_cli:audit",
    "dlq": "app.dlq_cli:dlq",
    "config": "app.config_cli:config",
    "replay": "app.replay.cli:replay",
    "backfill": "app.backfill_cli:backfill",
    "reconcile": "app.reconcile_cli:reconcile",
    "doctor": "app.doctor_cli:doctor",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup)
def cli() -> None:
    """Deskstream: keep Zendesk, Intercom, Salesforce and your AI agent in agreement."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: our own errors print as one clear line, exit status 1."""
    try:
        return cli.main(args=argv, prog_name="deskstream", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DeskstreamError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if not _kafka_unreachable(exc):
            raise
        click.echo(
            f"error: Kafka did not answer ({exc}); check that the "
            "cluster runs and that DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS points at it",
            err=True,
        )
        sys.exit(1)


def _kafka_unreachable(exc: Exception) -> bool:
    # Looked up, not imported: a command that never touched Kafka cannot have raised it, and
    # `deskstream --help` stays free of aiokafka's import.
    errors = sys.modules.get("aiokafka.errors")
    return errors is not None and isinstance(exc, errors.KafkaConnectionError)
