"""`kestrel-stack` as users run it: up --detach / status / env / down, and down after `up` was killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestrel.devstack.process import is_running

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "kestrel.devstack.cli"]


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kestrel-cli-"))
    path.chmod(0o755)  # PostgreSQL may run as another user
    yield path
    subprocess.run([*CLI, "--state-dir", str(path), "down"], capture_output=True, timeout=120)
    shutil.rmtree(path, ignore_errors=True)


def cli(stack_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--state-dir", str(stack_dir), *args], capture_output=True, text=True, timeout=timeout)


def recorded_pids(stack_dir: Path) -> list[int]:
    record = json.loads((stack_dir / "stack.json").read_text())
    return [c["pid"] for c in record["components"].values()]


def assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if is_running(pid)]


def test_up_detach_then_down_leaves_no_process(stack_dir: Path) -> None:
    up = cli(stack_dir, "up", "--detach", "--no-triton")
    assert up.returncode == 0, up.stderr
    assert "KESTREL_KAFKA_BOOTSTRAP=127.0.0.1:" in up.stdout
    pids = recorded_pids(stack_dir)
    assert len(pids) == 3 and all(is_running(pid) for pid in pids)

    assert cli(stack_dir, "status").returncode == 0
    again = cli(stack_dir, "up", "--detach", "--no-triton")
    assert again.returncode == 1 and "already running" in again.stderr
    assert recorded_pids(stack_dir) == pids  # the refused `up` left the running stack's record alone
    env = cli(stack_dir, "env").stdout
    assert "KESTREL_POSTGRES_DSN=postgresql://kestrel@127.0.0.1:" in env
    assert "KESTREL_REDIS_URL=redis://127.0.0.1:" in env

    down = cli(stack_dir, "down")
    assert down.returncode == 0 and "kafka" in down.stdout
    assert_all_gone(pids)
    assert not (stack_dir / "stack.env").exists()
    assert cli(stack_dir, "status").returncode == 1


def test_down_stops_the_servers_of_a_killed_foreground_up(stack_dir: Path) -> None:
    up = subprocess.Popen(
        [*CLI, "--state-dir", str(stack_dir), "up", "--no-triton"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        output = "".join(iter_until(up.stdout, "stack ready"))
        assert "stack ready" in output, output
        pids = recorded_pids(stack_dir)
        os.kill(up.pid, signal.SIGKILL)
        up.wait(timeout=10)
        assert all(is_running(pid) for pid in pids)  # orphaned, still recorded

        assert cli(stack_dir, "down").returncode == 0
        assert_all_gone(pids)
    finally:
        if up.poll() is None:
            up.kill()


def iter_until(stream: object, marker: str) -> Iterator[str]:
    for line in stream:  # type: ignore[attr-defined]
        yield line
        if marker in line:
            return
