"""Kafka's jars from Maven Central into ``<cache_dir>/kafka-<version>/libs`` (once per version).

Maven resolves through the user's ``~/.m2`` (shared, so a second project or a re-fetch costs
no download); the copied ``libs`` folder is project-local. A marker file is written only after
Maven succeeded, so an interrupted fetch leaves no marker and the next call starts over.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.kafka_local.layout import uses_log4j2
from app.settings import Settings
from schemas.errors import KafkaStackError

__all__ = [
    "POM_PATH",
    "Progress",
    "ensure_jars",
    "jars_ready",
    "libs_dir",
    "locked",
    "run_maven",
]

log = logging.getLogger(__name__)

POM_PATH = Path(__file__).with_name("pom.xml")
MARKER = ".complete"
FETCH_TIMEOUT_SECONDS = 900

Progress = Callable[[str], None]


def _log_progress(message: str) -> None:
    log.info("%s", message)


def libs_dir(settings: Settings) -> Path:
    return (settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs").resolve()


def jars_ready(settings: Settings) -> bool:
    """True when a fetch of this version finished (its marker exists)."""
    return (libs_dir(settings).parent / MARKER).is_file()


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two ``deskstream`` processes never race on one folder."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_maven(
    args: list[str], *, what: str, retry: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``mvn -q -B <args>``, its output captured; a KafkaStackError when Maven is missing or
    takes longer than FETCH_TIMEOUT_SECONDS (``what`` is being fetched, ``retry`` again)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaStackError(
            f"Maven (mvn) is not on PATH, and the local stack fetches {what} with it; install "
            "it (Debian/Ubuntu: apt-get install maven) or point KAFKA_BOOTSTRAP_SERVERS (and "
            "SCHEMA_REGISTRY_URL) at a running cluster"
        )
    try:
        return subprocess.run(
            [mvn, "-q", "-B", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise KafkaStackError(
            f"fetching {what} took over {FETCH_TIMEOUT_SECONDS} s; check the connection to "
            f"Maven Central and run {retry} again"
        ) from None


def ensure_jars(settings: Settings, progress: Progress = _log_progress) -> Path:
    """The libs folder for ``settings.kafka_version``, fetched with Maven if not there yet."""
    libs = libs_dir(settings)
    version = settings.kafka_version
    with locked(libs.parent / ".lock"):
        if jars_ready(settings):
            log.debug("kafka jars present version=%s libs=%s", version, libs)
            return libs
        # A folder without the marker is a fetch that died half way: start it over.
        shutil.rmtree(libs, ignore_errors=True)
        profile = "kafka4" if uses_log4j2(version) else "kafka3"
        progress(f"fetching Kafka {version} jars from Maven Central into {libs} ...")
        log.info("kafka jars fetch version=%s profile=%s libs=%s", version, profile, libs)
        result = run_maven(
            [
                "-f",
                str(POM_PATH),
                f"-Dkafka.version={version}",
                "-P",
                profile,
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
            ],
            what=f"the Kafka {version} jars",
            retry="`deskstream kafka fetch`",
        )
        if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            output = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise KafkaStackError(
                f"Maven could not fetch Kafka {version} (exit {result.returncode}); is "
                f"{version} a released Kafka version (DESKSTREAM_KAFKA_VERSION) and Maven "
                "Central reachable? Maven said:\n  " + "\n  ".join(output)
            )
        (libs.parent / MARKER).write_text(version + "\n", encoding="utf-8")
        count = sum(1 for _ in libs.glob("*.jar"))
        progress(f"fetched Kafka {version}: {count} jars in {libs}")
        log.info("kafka jars fetched version=%s jars=%d", version, count)
        return libs
