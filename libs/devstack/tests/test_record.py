"""stack.json / stack.env round trips, and `down` stopping recorded processes from another owner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kestrel.devstack.process import is_running, start_time
from kestrel.devstack.record import (
    ENV_FILE,
    RECORD_FILE,
    StackRecord,
    down,
    find_running,
    load_ports,
    read_env_file,
    save_ports,
    write_env_file,
)


def test_env_file_round_trip(tmp_path: Path) -> None:
    env = {"KESTREL_KAFKA_BOOTSTRAP": "127.0.0.1:1", "KESTREL_POSTGRES_DSN": "postgresql://kestrel@127.0.0.1:2/kestrel"}
    assert read_env_file(write_env_file(tmp_path, env)) == env


def test_record_of_dead_processes_is_not_running(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    StackRecord.of({}, {"redis": 1}, {"redis": {"pid": proc.pid, "started": None}}).write(tmp_path)
    assert StackRecord.load(tmp_path) is not None
    assert find_running(tmp_path) is None


async def test_down_stops_recorded_processes_and_removes_the_files(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    components = {"redis": {"pid": proc.pid, "started": start_time(proc.pid), "stop_signal": 15, "stop_grace": 5}}
    StackRecord.of({"KESTREL_REDIS_URL": "redis://x"}, {}, components).write(tmp_path)
    write_env_file(tmp_path, {"KESTREL_REDIS_URL": "redis://x"})
    assert find_running(tmp_path) is not None

    assert await down(tmp_path) == ["redis"]
    proc.wait(timeout=5)
    assert not is_running(proc.pid)
    assert not (tmp_path / RECORD_FILE).exists() and not (tmp_path / ENV_FILE).exists()
    assert await down(tmp_path) == []


def test_ports_survive_for_the_next_up_and_garbage_is_ignored(tmp_path: Path) -> None:
    save_ports(tmp_path, {"kafka": 19092, "redis": 16379})
    assert load_ports(tmp_path) == {"kafka": 19092, "redis": 16379}
    (tmp_path / "ports.json").write_text("not json")
    assert load_ports(tmp_path) == {}
