"""Where the broker jars are cached, and that a complete cache is used without Maven."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.devstack.kafka_dist import KAFKA_VERSION, ensure_kafka_jars, kafka_libs_dir
from kestrel.devstack.paths import cache_dir
from kestrel.devstack.process import ComponentError


def test_cache_dir_honours_kestrel_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KESTREL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kestrel"
    monkeypatch.setenv("KESTREL_CACHE_DIR", str(tmp_path / "k"))
    assert kafka_libs_dir() == tmp_path / "k" / f"kafka-{KAFKA_VERSION}" / "libs"


def test_a_complete_cache_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")
    libs = kafka_libs_dir()
    libs.mkdir(parents=True)
    (libs / ".complete").touch()
    assert ensure_kafka_jars() == libs


def test_an_incomplete_cache_is_fetched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")  # no mvn: the refetch attempt fails loudly
    kafka_libs_dir().mkdir(parents=True)
    with pytest.raises(ComponentError, match="Maven"):
        ensure_kafka_jars()
