"""Apache Avro's Java library decodes what we write: the Confluent framing with the writer
schema fetched from the schema registry by id, and the single-object encoding from the .avsc
files alone.

Needs a JDK (``java`` runs DecodeCheck.java as a single-file program) and Maven (to fetch the
Avro jars from Maven Central once, into .deskstream/cache/avro-java/libs). Without them the
test is skipped with the reason, unless DESKSTREAM_REQUIRE_JAVA=1 makes their absence a
failure (CI machines that are meant to have them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pytest

from app.schema_registry.client import RegistryClient
from app.schema_registry.startup import prepare_subjects
from app.settings import load_settings
from app.topics import topic_specs
from schemas.codec import AvroCodec
from schemas.models import AvroRecord
from schemas.registry import SCHEMAS_DIR, get_registry
from schemas.schema_ids import SchemaIds
from tests.schemas.examples import EXAMPLES

pytestmark = pytest.mark.java

ROOT = Path(__file__).resolve().parents[2]
JAVA_DIR = Path(__file__).resolve().with_name("java")
POM = JAVA_DIR / "pom.xml"
LIBS = ROOT / ".deskstream" / "cache" / "avro-java" / "libs"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _tools_or_skip() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not on PATH: the Java cross-check needs a JDK and Maven"
    if os.environ.get("DESKSTREAM_REQUIRE_JAVA") == "1":
        pytest.fail(f"{reason} (DESKSTREAM_REQUIRE_JAVA=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def avro_libs() -> Path:
    _tools_or_skip()
    # The marker names the pom's hash: a changed dependency list fetches afresh, and jars
    # of an older Avro never sit on the classpath next to the new ones.
    marker = LIBS / f".fetched-{hashlib.sha256(POM.read_bytes()).hexdigest()[:16]}"
    if not marker.is_file():
        shutil.rmtree(LIBS, ignore_errors=True)
        LIBS.mkdir(parents=True)
        fetch = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={LIBS}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if fetch.returncode != 0:
            pytest.fail(f"mvn could not fetch the Avro jars:\n{fetch.stdout}\n{fetch.stderr}")
        marker.touch()
    return LIBS


def java_view(value: object) -> object:
    """What GenericRecord.toString() prints for a value, as json.loads reads it back."""
    if isinstance(value, AvroRecord):
        return {name: java_view(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return (value - EPOCH) // timedelta(microseconds=1)  # no logical-type conversion
    if isinstance(value, bytes):
        return value.decode("latin-1")  # Java prints bytes as ISO-8859-1 characters
    if isinstance(value, list):
        return [java_view(v) for v in value]
    if isinstance(value, dict):
        return {k: java_view(v) for k, v in value.items()}
    return value


def typed(value: object) -> object:
    # == alone would take true for 1 and 1 for 1.0; the branch must survive, not just the value.
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def _java_decodes(avro_libs: Path, messages: Path, *extra: str) -> list[str]:
    run = subprocess.run(
        [
            "java",
            "-cp",
            f"{avro_libs}/*",
            str(JAVA_DIR / "DecodeCheck.java"),
            str(SCHEMAS_DIR),
            str(messages),
            *extra,
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    stderr = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 0, stderr
    return run.stdout.decode("utf-8").splitlines()


def _assert_examples(lines: list[str], labels: list[str]) -> None:
    assert len(lines) == len(labels)
    for label, line in zip(labels, lines, strict=True):
        assert typed(json.loads(line)) == typed(java_view(EXAMPLES[label])), label


def test_java_decodes_every_example(avro_libs: Path, tmp_path: Path) -> None:
    # The single-object encoding (no registry): from the .avsc files alone.
    labels = sorted(EXAMPLES)
    codec = AvroCodec(get_registry())
    messages = tmp_path / "messages.hex"
    messages.write_text("".join(codec.encode(EXAMPLES[label]).hex() + "\n" for label in labels))
    _assert_examples(_java_decodes(avro_libs, messages), labels)


def test_java_decodes_the_confluent_framing_with_the_writer_schema_from_the_registry(
    avro_libs: Path, schema_registry_url: str, kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    # Ids from a real registry, as a worker registers them; Java asks the registry for each
    # writer schema by id (plain HTTP) and knows nothing else of ours.
    settings = load_settings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=f"java-{uuid.uuid4().hex[:8]}",
    )
    ids = SchemaIds(get_registry())
    with RegistryClient(schema_registry_url) as client:
        prepare_subjects(
            client,
            topic_specs(settings),
            get_registry(),
            ids,
            compatibility=settings.schema_registry_compatibility,
        )
    codec = AvroCodec(get_registry(), ids)
    labels = sorted(EXAMPLES)
    encoded = [codec.encode(EXAMPLES[label]) for label in labels]
    assert {message[:1] for message in encoded} == {b"\x00"}
    messages = tmp_path / "messages.hex"
    messages.write_text("".join(message.hex() + "\n" for message in encoded))
    _assert_examples(_java_decodes(avro_libs, messages, schema_registry_url), labels)
