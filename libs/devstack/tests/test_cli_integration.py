"""`kestrel-stack` as users run it: up --detach / status / env / ps / down, and down after `up` was killed."""

from __future__ import annotations

import asyncio
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

from kestrel.common.grpc.health import wait_serving
from kestrel.devstack import detach
from kestrel.devstack.ports import free_port
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


def service_pids(stack_dir: Path) -> dict[str, int]:
    ps = cli(stack_dir, "ps", "--json")
    assert ps.returncode == 0, ps.stdout + ps.stderr
    return {row["name"]: row["pid"] for row in json.loads(ps.stdout) if row["state"] == "running"}


def test_up_detach_then_down_leaves_no_process(stack_dir: Path) -> None:
    up = cli(stack_dir, "up", "--detach", timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "KESTREL_KAFKA_BOOTSTRAP=127.0.0.1:" in up.stdout
    pids = recorded_pids(stack_dir)
    assert len(pids) == 4 and all(is_running(pid) for pid in pids)
    services = service_pids(stack_dir)  # each service its own process, beside the servers
    assert set(services) == {
        "ingest-0",
        "features-0",
        "feature-writer-0",
        "inference-0",
        "inference-scorer-0",
        "prediction-logger-0",
        "drift-monitor-0",
        "alerting-0",
        "retrain-trigger-0",
    }
    assert len(set(services.values()) | set(pids)) == 13

    status = cli(stack_dir, "status")
    assert status.returncode == 0 and "KESTREL_POSTGRES_DSN=postgresql://kestrel@127.0.0.1:" in status.stdout
    again = cli(stack_dir, "up", "--detach", "--no-triton")
    assert again.returncode == 1 and "already running" in again.stderr
    assert recorded_pids(stack_dir) == pids  # the refused `up` left the running stack's record alone
    env = cli(stack_dir, "env").stdout
    assert "KESTREL_REDIS_URL=redis://127.0.0.1:" in env and "KESTREL_TRITON_URL=127.0.0.1:" in env
    assert "KESTREL_POSTGRES_DSN=postgresql://kestrel@127.0.0.1:" in env  # the prediction-logger reads it
    assert_inference_runs_from_stack_env(stack_dir)

    down = cli(stack_dir, "down")
    assert down.returncode == 0 and "kafka" in down.stdout
    assert_all_gone(pids + list(services.values()))
    assert not (stack_dir / "stack.env").exists()
    assert cli(stack_dir, "status").returncode == 1
    assert cli(stack_dir, "ps").returncode == 1


def assert_inference_runs_from_stack_env(stack_dir: Path) -> None:
    """`set -a; . stack.env; kestrel-inference` finds Triton and the model the stack loaded at `up`."""
    port = free_port()
    ports = {
        "KESTREL_INFERENCE_GRPC_PORT": str(port),
        "KESTREL_INFERENCE_METRICS_PORT": "0",
        "KESTREL_INFERENCE_HEALTH_PORT": "0",
    }
    script = Path(sys.executable).parent / "kestrel-inference"
    inference = subprocess.Popen(
        ["bash", "-c", f"set -a; . {stack_dir / 'stack.env'}; set +a; exec {script}"],
        env={**os.environ, **ports},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        asyncio.run(wait_serving(f"127.0.0.1:{port}", timeout_s=120))
    except Exception:  # noqa: BLE001 - any failure to serve: show what the process said
        inference.kill()
        raise AssertionError(inference.communicate()[0].decode()[-3000:]) from None
    finally:
        inference.terminate()
        inference.wait(timeout=60)


def test_down_stops_the_servers_of_a_killed_foreground_up(stack_dir: Path) -> None:
    up = subprocess.Popen(
        [*CLI, "--state-dir", str(stack_dir), "up", "--no-triton"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        output = "".join(iter_until(up.stdout, detach.READY))
        assert detach.READY in output, output
        pids = recorded_pids(stack_dir)
        services = list(service_pids(stack_dir).values())
        assert len(services) == 6  # ingest, features, feature-writer, prediction-logger, drift-monitor, alerting
        os.kill(up.pid, signal.SIGKILL)
        up.wait(timeout=10)
        assert all(is_running(pid) for pid in pids)  # orphaned, still recorded

        assert cli(stack_dir, "down").returncode == 0
        assert_all_gone(pids + services)
    finally:
        if up.poll() is None:
            up.kill()


def iter_until(stream: object, marker: str) -> Iterator[str]:
    for line in stream:  # type: ignore[attr-defined]
        yield line
        if marker in line:
            return
