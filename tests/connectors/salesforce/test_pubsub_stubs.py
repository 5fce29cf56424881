"""The committed Pub/Sub modules are current, and our proto is wire-compatible with Salesforce's.

The generated modules are committed (the runtime needs only grpcio and protobuf); this test
regenerates them with grpcio-tools and mypy-protobuf and fails when they differ. The contract
test compiles the official ``salesforce-pubsub_api.proto`` from ``DESKSTREAM_SPECS_DIR``
(default ``../shared/specs``; skipped when absent) and compares every message, field number,
field type, enum value and RPC with ours.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from connectors.salesforce.pubsub import generate

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    generate.generate(tmp_path)

    package = Path(generate.__file__).parent
    relative = package.relative_to(REPO_ROOT)
    for name in generate.GENERATED:
        fresh = (tmp_path / relative / name).read_text(encoding="utf-8")
        committed = (package / name).read_text(encoding="utf-8")
        assert committed == fresh, (
            f"{name} is stale: run `python -m connectors.salesforce.pubsub.generate`"
        )


def _descriptor_set(proto: Path, include: Path, out: Path) -> descriptor_pb2.FileDescriptorProto:
    protoc = importlib.import_module("grpc_tools.protoc")
    status = protoc.main(
        ["protoc", f"--proto_path={include}", f"--descriptor_set_out={out}", str(proto)]
    )
    assert status == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    [file] = files.file
    return file


def _shape(file: descriptor_pb2.FileDescriptorProto) -> dict[str, Any]:
    """What decides wire compatibility: names, numbers, types and streaming, not comments."""
    return {
        "package": file.package,
        "messages": {
            message.name: sorted(
                (f.number, f.name, f.type, f.label, f.type_name) for f in message.field
            )
            for message in file.message_type
        },
        "enums": {
            enum.name: sorted((v.number, v.name) for v in enum.value) for enum in file.enum_type
        },
        "services": {
            service.name: sorted(
                (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for m in service.method
            )
            for service in file.service
        },
    }


def test_our_proto_is_wire_compatible_with_the_official_one(tmp_path: Path) -> None:
    specs = Path(os.environ.get("DESKSTREAM_SPECS_DIR", REPO_ROOT.parent / "shared" / "specs"))
    official = specs / "salesforce-pubsub_api.proto"
    if not official.exists():
        pytest.skip(f"official proto not found at {official} (set DESKSTREAM_SPECS_DIR)")
    # Compile a temporary copy: the spec folder is read-only reference material.
    scratch = tmp_path / "official"
    scratch.mkdir()
    shutil.copy(official, scratch / "pubsub_api.proto")

    theirs = _descriptor_set(scratch / "pubsub_api.proto", scratch, tmp_path / "theirs.pb")
    ours = _descriptor_set(generate.PROTO, generate.PROTO.parent, tmp_path / "ours.pb")

    assert _shape(ours) == _shape(theirs)
