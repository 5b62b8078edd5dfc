"""Backward compatibility: the current schemas/ must read data written by every committed version."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.common.avro import check_backward_compatible, plain_schema

ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def committed_versions(repo: Path, rel_path: str) -> list[tuple[str, str]]:
    """(commit, schema text) for every commit that touched the file and still has it."""
    log = _git(repo, "log", "--format=%H", "--", rel_path) or ""
    versions = []
    for commit in log.split():
        text = _git(repo, "show", f"{commit}:{rel_path}")
        if text is not None:  # None: the commit deleted the file
            versions.append((commit, text))
    return versions


def read_old_with_new(old: Any, new: Any, records: list[Any]) -> None:
    """Write records with the old schema and read them back with the new one (raises on failure).

    Logical types are dropped: they do not change the bytes, and check_backward_compatible covers them.
    """
    writer, reader = plain_schema(old), plain_schema(new)
    for record in records:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, record)
        buf.seek(0)
        fastavro.schemaless_reader(buf, writer, reader)


def _history_cases() -> list[Any]:
    if shutil.which("git") is None or _git(ROOT, "rev-parse", "--git-dir") is None:
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason="git unavailable"))]
    cases = []
    for path in sorted((ROOT / "schemas").glob("*.avsc")):
        rel = path.relative_to(ROOT).as_posix()
        for commit, text in committed_versions(ROOT, rel):
            cases.append(pytest.param(path, commit, text, id=f"{path.stem}@{commit[:10]}"))
    skip = pytest.mark.skip(reason="no committed schemas yet")
    return cases or [pytest.param(None, None, None, marks=skip)]


HISTORY = _history_cases()


@pytest.mark.parametrize(("path", "commit", "old_text"), HISTORY)
def test_current_schema_is_backward_compatible(path, commit, old_text):
    problems = check_backward_compatible(json.loads(old_text), json.loads(path.read_text()))
    assert problems == [], f"{path.name} breaks readers of data written at {commit[:10]}: {problems}"


@pytest.mark.parametrize(("path", "commit", "old_text"), HISTORY)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_current_schema_reads_old_data(path, commit, old_text, data, avro_records):
    old = json.loads(old_text)
    records = data.draw(st.lists(avro_records(old), min_size=1, max_size=3))
    read_old_with_new(old, json.loads(path.read_text()), records)


# The checks above must be able to fail: run them against a throwaway repository.

EVENT_V1 = {
    "type": "record",
    "name": "Event",
    "namespace": "kestrel.v1",
    "doc": "test",
    "fields": [
        {"name": "event_id", "type": "string", "doc": "id"},
        {"name": "amount", "type": "double", "doc": "amount"},
    ],
}


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git unavailable")
    (tmp_path / "schemas").mkdir()
    _write(tmp_path, EVENT_V1)
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    return tmp_path


def _write(repo: Path, schema: dict[str, Any]) -> None:
    (repo / "schemas" / "event.avsc").write_text(json.dumps(schema))


def _problems(repo: Path) -> list[str]:
    new = json.loads((repo / "schemas" / "event.avsc").read_text())
    problems = []
    for commit, text in committed_versions(repo, "schemas/event.avsc"):
        problems += check_backward_compatible(json.loads(text), new)
        try:
            read_old_with_new(json.loads(text), new, [{"event_id": "e", "amount": 1.5}])
        except Exception as exc:  # noqa: BLE001 - any failure to read is a compatibility problem to report
            problems.append(f"{commit[:10]}: {type(exc).__name__}: {exc}")
    return problems


def test_history_catches_added_field_without_default(repo):
    _write(repo, {**EVENT_V1, "fields": [*EVENT_V1["fields"], {"name": "channel", "type": "string"}]})
    problems = _problems(repo)
    assert any("channel" in p and "default" in p for p in problems)
    assert any("SchemaResolutionError" in p for p in problems)


def test_history_catches_incompatible_type_change(repo):
    fields = [EVENT_V1["fields"][0], {"name": "amount", "type": "string"}]
    _write(repo, {**EVENT_V1, "fields": fields})
    assert any("amount" in p and "double" in p for p in _problems(repo))


def test_history_accepts_safe_evolution(repo):
    fields = [*EVENT_V1["fields"], {"name": "channel", "type": "string", "default": "pos"}]
    _write(repo, {**EVENT_V1, "fields": fields})
    assert _problems(repo) == []
