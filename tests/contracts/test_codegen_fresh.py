"""Generated gRPC/protobuf code in libs/common matches protos/; a proto edit without regenerating fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("grpc_tools")

from kestrel.common import codegen

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"


def test_generated_code_is_fresh():
    problems = codegen.stale_files(PROTOS, codegen.SRC_ROOT)
    assert problems == [], "generated code is stale; run `task generate`:\n" + "\n".join(problems)


def test_check_command_exits_zero():
    done = subprocess.run(
        [sys.executable, "-m", "kestrel.common.codegen", "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_check_fails_when_a_proto_changes(tmp_path):
    protos = tmp_path / "protos"
    shutil.copytree(PROTOS, protos)
    event = protos / "kestrel" / "api" / "v1" / "event.proto"
    event.write_text(
        event.read_text().replace(
            "map<string, string> attributes = 10;", "map<string, string> attributes = 10;\n  string extra = 11;"
        )
    )
    assert "stale: kestrel/api/v1/event_pb2.py" in codegen.stale_files(protos, codegen.SRC_ROOT)
    assert codegen.main(["--check", "--protos", str(protos)]) == 1


def test_check_reports_missing_and_left_over_files(tmp_path):
    out = tmp_path / "src"
    shutil.copytree(codegen.SRC_ROOT / "kestrel" / "api", out / "kestrel" / "api")
    (out / "kestrel/api/v1/ingest_pb2.pyi").unlink()
    (out / "kestrel/api/v1/gone_pb2.py").write_text("")
    problems = codegen.stale_files(PROTOS, out)
    assert "missing: kestrel/api/v1/ingest_pb2.pyi" in problems
    assert "left over: kestrel/api/v1/gone_pb2.py" in problems


def test_write_regenerates_and_removes_orphans(tmp_path):
    out = tmp_path / "src"
    (out / "kestrel/api/v1").mkdir(parents=True)
    (out / "kestrel/api/v1/gone_pb2.py").write_text("")
    codegen.write(PROTOS, out)
    assert codegen.stale_files(PROTOS, out) == []
