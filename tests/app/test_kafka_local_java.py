"""Finding Java 21+ for the schema registry, on fake JDK folders (no JVM is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.kafka_local import java
from app.kafka_local.java import find_java, java_version
from app.kafka_local.registry import registry_layout
from app.settings import load_settings
from schemas.errors import KafkaStackError


def _jdk(root: Path, name: str, version: str) -> Path:
    """A JDK folder as distributions lay them out: ``bin/java`` and a ``release`` file."""
    home = root / name
    (home / "bin").mkdir(parents=True)
    binary = home / "bin" / "java"
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return binary


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No JAVA_HOME, an empty PATH, no update-alternatives; JDKs only where the test puts them."""
    jvm = tmp_path / "jvm"
    jvm.mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(java, "JVM_FOLDERS", (jvm,))
    java_version.cache_clear()
    return jvm


def test_the_newest_jdk_beside_an_older_default_is_found(machine: Path, tmp_path: Path) -> None:
    default = _jdk(machine, "java-17-openjdk-amd64", "17.0.15")
    (tmp_path / "bin" / "java").symlink_to(default)
    _jdk(machine, "temurin-21-jdk-amd64", "21.0.9")
    newest = _jdk(machine, "temurin-25-jdk-amd64", "25.0.3")

    found = find_java(21, purpose="the registry")

    assert found.java == newest
    assert found.major == 25


def test_java_home_wins_when_it_is_new_enough(
    machine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = _jdk(tmp_path / "elsewhere", "jdk-21", "21.0.1")
    _jdk(machine, "temurin-25-jdk-amd64", "25.0.3")
    monkeypatch.setenv("JAVA_HOME", str(chosen.parent.parent))

    assert find_java(21, purpose="the registry").java == chosen


def test_an_old_java_home_does_not_stop_the_search(
    machine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _jdk(tmp_path / "elsewhere", "jdk-1.8", "1.8.0_392")
    monkeypatch.setenv("JAVA_HOME", str(old.parent.parent))
    newer = _jdk(machine, "temurin-21-jdk-amd64", "21.0.9")

    assert find_java(21, purpose="the registry").java == newer


def test_without_java_21_the_error_names_what_was_seen_and_what_to_install(
    machine: Path,
) -> None:
    _jdk(machine, "java-17-openjdk-amd64", "17.0.15")

    with pytest.raises(KafkaStackError) as caught:
        find_java(21, purpose="Apicurio Registry")

    message = str(caught.value)
    assert message.startswith("Apicurio Registry needs Java 21 or newer, and none was found")
    assert "java-17-openjdk-amd64/bin/java (Java 17)" in message
    assert "Install a JDK 21+" in message
    assert "JAVA_HOME" in message


def test_registry_ports_follow_the_kafka_port_base(tmp_path: Path) -> None:
    layout = registry_layout(load_settings(state_dir=tmp_path, kafka_bootstrap_servers=None))
    assert (layout.port, layout.management_port) == (19181, 19182)
    assert layout.url == "http://127.0.0.1:19181/apis/ccompat/v7"
    assert layout.home == (tmp_path / "kafka" / "1-node" / "registry").absolute()
    moved = registry_layout(load_settings(state_dir=tmp_path, kafka_port_base=19192))
    assert moved.port == 19281
