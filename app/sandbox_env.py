"""What a worker needs to connect to running sandboxes, as its environment variables.

``deskstream sandbox`` prints these and, with ``--env-file``, writes them to a file only its
owner can read (0600); the printout then names the file instead of repeating a secret. The
names come from :class:`app.settings.Settings` itself (its prefix and nested delimiter, its
``connectors`` field, the :class:`ConnectorSettings` field names), so they are exactly what
the worker reads. The values are the sandboxes' own credentials: they open nothing real.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from app.settings import Settings
from connectors.base.registry import ingest_platforms, sink_platforms
from connectors.base.settings import ConnectorSettings, SourceSettings
from schemas.errors import ConfigurationError

__all__ = ["ConnectorEnv", "EnvVar", "connector_env", "env_file_text", "printout", "write_env_file"]

#: values that need no quoting in a POSIX shell nor in ``docker run --env-file``
_PLAIN = re.compile(r"[\w.:/@+,=%\[\]-]*")


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    value: str
    secret: bool

    def line(self) -> str:
        value = self.value if _PLAIN.fullmatch(self.value) else shlex.quote(self.value)
        return f"{self.name}={value}"


@dataclass(frozen=True, slots=True)
class ConnectorEnv:
    """One sandbox's worker connector: its variables, or why a worker would not use them."""

    connector_id: str
    variables: tuple[EnvVar, ...]
    #: why a worker of this version would not use these (they are then commented out)
    unused_because: str | None = None


def _variable_name(connector_id: str, field: str, *, source: str | None = None) -> str:
    config = Settings.model_config
    prefix, nested = config.get("env_prefix", ""), config.get("env_nested_delimiter") or "__"
    assert "connectors" in Settings.model_fields  # the field these variables fill
    assert "sources" in ConnectorSettings.model_fields  # the level a source's names sit at
    # A source's kind keeps its case: it is a key, as the connector id is.
    levels = [f"{prefix}CONNECTORS", connector_id, *(("SOURCES", source) if source else ())]
    return nested.join([*levels, field.upper()])


def _changed(model: BaseModel, *, skip: str = "") -> dict[str, Any]:
    """The fields of ``model`` whose value is not the default (what a variable must set)."""
    return {
        field: getattr(model, field)
        for field, info in type(model).model_fields.items()
        if field != skip and getattr(model, field) != info.get_default(call_default_factory=True)
    }


def _text(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"  # as the README and shell users spell them
    return str(value)


def connector_env(connector_id: str, settings: ConnectorSettings | None) -> ConnectorEnv:
    """The variables that give a worker connector ``connector_id`` these ``settings``; a
    platform a worker of this version can neither take webhooks from nor write to is marked
    unused."""
    if settings is None:
        return ConnectorEnv(
            connector_id, (), f"a worker has no {connector_id} connector in this version"
        )
    values = {
        field: getattr(settings, field)
        for field in ConnectorSettings.model_fields
        if field not in ("platform_settings", "sources")
    }
    own = settings.platform_settings
    if own is not None:  # the platform's own names, set where they differ from the default
        values |= _changed(own, skip="sources")
    variables = []
    for field, value in values.items():
        if value is None:
            continue
        secret = isinstance(value, SecretStr)
        variables.append(EnvVar(_variable_name(connector_id, field), _text(value), secret))
    # A source's kind is its own level of names (``..._SOURCES__<kind>__<NAME>``); the
    # platform's model of it holds the platform's names too (a CDC source's transport).
    own_sources: dict[str, SourceSettings] = getattr(own, "sources", None) or {}
    for kind, shared in settings.sources.items():
        source = own_sources.get(kind, shared)
        fields = _changed(source) or {"enabled": source.enabled}
        for field, value in fields.items():
            name = _variable_name(connector_id, field, source=kind)
            variables.append(EnvVar(name, _text(value), False))
    unused = None
    if settings.platform not in ingest_platforms() | sink_platforms():
        # Configured, the connector would answer the platform's webhooks 503 until it exists.
        unused = (
            f"a worker has no {settings.platform} connector in this version (it would answer "
            "the webhooks 503); kept here, commented out, for when it has"
        )
    return ConnectorEnv(connector_id, tuple(variables), unused)


def printout(envs: Iterable[ConnectorEnv], *, env_file: Path | None) -> list[str]:
    """Lines for the terminal; with ``env_file``, secrets are named, not shown again."""
    lines = [
        "# worker settings for these sandboxes (sandbox-only credentials)"
        + (f", also in {env_file}" if env_file else "")
    ]
    for env in envs:
        comment = "# " if env.unused_because else ""
        if env.unused_because:
            lines.append(f"# {env.connector_id}: {env.unused_because}")
        for var in env.variables:
            shown = f"{var.name}=<secret, in {env_file}>" if var.secret and env_file else var.line()
            lines.append(comment + shown)
    return lines


def env_file_text(envs: Iterable[ConnectorEnv], *, header: str) -> str:
    """The env file: ``NAME=value`` lines, loaded with ``set -a; . FILE; set +a``."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for env in envs:
        lines.append("")
        if env.unused_because:
            lines.append(f"# {env.connector_id}: {env.unused_because}")
        lines += [("# " if env.unused_because else "") + var.line() for var in env.variables]
    return "\n".join(lines) + "\n"


def _cannot_write(path: Path, exc: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"cannot write the env file {path}: {exc.strerror}; give --env-file a path in a "
        "writable folder"
    )


def write_env_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), replacing it whole: the
    file is made beside it with mode 0600 from the start, so no reader sees it half-written
    or with wider permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise _cannot_write(path, exc) from None
