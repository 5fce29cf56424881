"""Dependency arrows point one way: ``app`` → ``streams`` → ``connectors`` → ``schemas``.

``sandboxes`` sits beside them and may import ``connectors`` and ``schemas``; nothing a
production worker loads imports ``sandboxes``, nor a package of the ``sandbox`` extra. Only the
dev features of ``app`` (``deskstream sandbox``, the rehearsal, the demo) reach the sandboxes,
and only lazily, through the commands the CLI imports when they run.

A static scan (``ast``): every import statement counts, at module level or inside a function,
under ``TYPE_CHECKING`` or not.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: rank of each first-party package: a module may import its own package and lower ranks only
LAYERS = {"schemas": 0, "connectors": 1, "streams": 2, "app": 3}
#: what ``sandboxes`` may import (besides the standard library and third-party packages)
SANDBOXES_MAY_IMPORT = {"sandboxes", "connectors", "schemas"}
FIRST_PARTY = {*LAYERS, "sandboxes", "tests", "bench"}
#: the ``deskstream worker`` command: the CLI every command loads, and the worker command
WORKER_ENTRY_POINTS = ("app.__main__", "app.cli", "app.worker_cli")
#: modules whose ``"module:attribute"`` strings are not followed: the CLI's table of the other
#: commands, each imported only when it runs (the worker's is an entry point above)
NOT_FOLLOWED = {"app.cli"}
#: a module loaded by name (``importlib``), as the registries write it: "connectors.x.sink:Sink"
BY_NAME = re.compile(r"(?:app|streams|connectors|schemas|sandboxes)(?:\.\w+)+(?::\w+)?")
#: the import name of each distribution in the ``sandbox`` extra
SANDBOX_EXTRA_MODULES: dict[str, str] = {
    "confluent-kafka[avro,schemaregistry]": "confluent_kafka",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(package: str) -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


@cache
def all_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in FIRST_PARTY:
        found.update(modules_of(package))
    return found


def parse_imports(source: str, package: str) -> frozenset[str]:
    """Every module ``source`` imports, as absolute dotted names (``from a import b`` yields
    ``a`` and ``a.b``, since ``b`` may be a submodule); ``package`` resolves relative ones."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(found)


@cache
def imports_of(path: Path) -> frozenset[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return parse_imports(path.read_text(encoding="utf-8"), package)


def first_party_imports(path: Path) -> Iterator[str]:
    for module in imports_of(path):
        if module.split(".")[0] in FIRST_PARTY:
            yield module


def loaded_by_name(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and BY_NAME.fullmatch(node.value)
        ):
            yield node.value.partition(":")[0]


def worker_closure() -> dict[str, Path]:
    """The first-party modules a worker can load: every import of the entry points, followed
    transitively (function-level imports too, so a lazy import counts as loaded), and every
    module the registries load by name."""
    modules = all_modules()
    seen: dict[str, Path] = {}
    todo = list(WORKER_ENTRY_POINTS)
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen[name] = modules[name]
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run
        todo.extend(first_party_imports(modules[name]))
        if name not in NOT_FOLLOWED:
            todo.extend(loaded_by_name(modules[name]))
    return seen


@pytest.mark.parametrize("package", ["schemas", "connectors", "streams", "app"])
def test_layers_import_only_downwards(package: str) -> None:
    # app's dev features (sandbox CLI, rehearsal, demo) may import sandboxes: the worker test
    # below proves a worker never loads them
    allowed = {name for name, rank in LAYERS.items() if rank <= LAYERS[package]}
    if package == "app":
        allowed.add("sandboxes")
    wrong = sorted(
        f"{name} imports {module}"
        for name, path in modules_of(package).items()
        for module in first_party_imports(path)
        if module.split(".")[0] not in allowed
    )
    assert wrong == [], f"{package} may import only {package} and below (app → streams → "
    f"connectors → schemas): {wrong}"


def test_sandboxes_import_only_connectors_and_schemas() -> None:
    wrong = sorted(
        f"{name} imports {module}"
        for name, path in modules_of("sandboxes").items()
        for module in first_party_imports(path)
        if module.split(".")[0] not in SANDBOXES_MAY_IMPORT
    )
    assert wrong == []


def test_the_worker_never_loads_a_sandbox() -> None:
    closure = worker_closure()
    assert {"app.cli", "app.worker_cli", "app.faust_app", "streams.sync"} <= closure.keys()
    assert any(name.startswith("connectors.zendesk.") for name in closure)
    wrong = sorted(
        f"{name} imports {module}"
        for name, path in closure.items()
        for module in imports_of(path)
        if module.split(".")[0] == "sandboxes"
    )
    assert wrong == [], f"the worker's code paths reach the sandboxes: {wrong}"


def test_the_worker_needs_nothing_from_the_sandbox_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = {
        requirement.split("==")[0] for requirement in project["optional-dependencies"]["sandbox"]
    }
    assert extra == SANDBOX_EXTRA_MODULES.keys(), "name the import of every sandbox extra"
    forbidden = set(SANDBOX_EXTRA_MODULES.values())
    wrong = sorted(
        f"{name} imports {module}"
        for name, path in worker_closure().items()
        for module in imports_of(path)
        if forbidden & {".".join(module.split(".")[:i]) for i in (1, 2)}
    )
    assert wrong == [], f"a worker installed without the sandbox extra would fail: {wrong}"


def test_the_scan_sees_lazy_conditional_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import sandboxes.zendesk\n"
        "def f():\n"
        "    from sandboxes.base import ManualClock\n"
        "from ..base import http\n"
    )
    found = parse_imports(source, "connectors.zendesk")
    assert {"sandboxes.zendesk", "sandboxes.base", "connectors.base.http"} <= found
