"""Find a Java runtime of at least a given major version, wherever this machine keeps it.

The brokers run on whatever ``java`` is on PATH (Kafka needs 17); Apicurio Registry needs 21
or newer, which machines often have beside an older default (a Temurin JDK under
``/usr/lib/jvm`` next to the distribution's Java 17). Looked at, in this order:
``JAVA_HOME``, ``java`` on PATH, the ``update-alternatives`` entries for java, then every JDK
under the usual folders (newest first). A runtime's version comes from its ``release`` file,
or from ``java -version`` when there is none.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import KafkaStackError

__all__ = ["JavaRuntime", "candidates", "find_java", "java_version"]

#: folders that hold one JDK per subfolder on Linux distributions and in Temurin's packages
JVM_FOLDERS = (Path("/usr/lib/jvm"), Path("/usr/java"), Path("/opt/java"), Path("/opt"))

_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="([^"]+)"', re.MULTILINE)
_VERSION_OUTPUT = re.compile(r'version "([^"]+)"')


@dataclass(frozen=True, slots=True)
class JavaRuntime:
    java: Path
    major: int
    #: where it was found (JAVA_HOME, PATH, update-alternatives, a folder), for messages
    origin: str


def _major(version: str) -> int | None:
    # "1.8.0_392" is Java 8; "17.0.15", "21", "25.0.3+9" are what they say.
    parts = re.findall(r"\d+", version)
    if not parts:
        return None
    first = int(parts[0])
    return int(parts[1]) if first == 1 and len(parts) > 1 else first


@functools.cache
def java_version(java: Path) -> int | None:
    """The major version of the runtime whose ``bin/java`` is ``java``; None if it won't say."""
    release = java.resolve().parent.parent / "release"
    try:
        found = _RELEASE_VERSION.search(release.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        found = None
    if found:
        return _major(found.group(1))
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION_OUTPUT.search(result.stderr + result.stdout)
    return _major(found.group(1)) if found else None


def _alternatives() -> list[Path]:
    tool = shutil.which("update-alternatives")
    if tool is None:
        return []
    try:
        result = subprocess.run(
            [tool, "--list", "java"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [Path(line.strip()) for line in result.stdout.splitlines() if line.strip()]


def _in_folders() -> list[Path]:
    found: list[Path] = []
    for folder in JVM_FOLDERS:
        try:
            homes = sorted(folder.iterdir())
        except OSError:
            continue
        found += [home / "bin" / "java" for home in homes]
    return found


def candidates() -> Iterator[tuple[Path, str]]:
    """Every java binary worth asking, best first, each once: (path, where it was found)."""
    seen: set[Path] = set()
    listed: list[tuple[Path | None, str]] = []
    home = os.environ.get("JAVA_HOME")
    if home:
        listed.append((Path(home) / "bin" / "java", "JAVA_HOME"))
    on_path = shutil.which("java")
    listed.append((Path(on_path) if on_path else None, "PATH"))
    listed += [(path, "update-alternatives") for path in _alternatives()]
    listed += [(path, str(path.parent.parent.parent)) for path in _in_folders()]
    for path, origin in listed:
        if path is None or not path.is_file() or not os.access(path, os.X_OK):
            continue
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        yield path, origin


def find_java(minimum: int, *, purpose: str) -> JavaRuntime:
    """The first runtime of at least ``minimum`` (JAVA_HOME, PATH, alternatives, then the
    newest under the JVM folders); a KafkaStackError naming what was found otherwise."""
    found: list[str] = []
    qualifying: list[JavaRuntime] = []
    for path, origin in candidates():
        major = java_version(path)
        found.append(f"{path} ({'unknown version' if major is None else f'Java {major}'})")
        if major is not None and major >= minimum:
            runtime = JavaRuntime(path, major, origin)
            if origin in ("JAVA_HOME", "PATH", "update-alternatives"):
                return runtime
            qualifying.append(runtime)
    if qualifying:
        return max(qualifying, key=lambda runtime: runtime.major)
    seen = "; ".join(found) if found else "no java at all"
    raise KafkaStackError(
        f"{purpose} needs Java {minimum} or newer, and none was found (looked at JAVA_HOME, "
        f"PATH, update-alternatives and {', '.join(str(f) for f in JVM_FOLDERS)}: {seen}). "
        f"Install a JDK {minimum}+ (e.g. Eclipse Temurin {minimum}, the temurin-{minimum}-jdk "
        f"package, or openjdk-{minimum}-jdk-headless where the distribution has it) or point "
        "JAVA_HOME at one"
    )
