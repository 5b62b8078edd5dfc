"""The supervisor, on a stand-in service: separate pids, restart after a crash, `kill` holds a replica down."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kestrel.devstack import control
from kestrel.devstack.process import ComponentError, is_running
from kestrel.devstack.services import Service
from kestrel.devstack.supervisor import Supervisor, backoff

# Listens on its gRPC port like a service would, and exits 0 on SIGTERM.
STAND_IN = """
import os, signal, socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(os.environ["KESTREL_INGEST_GRPC_PORT"])))
sock.listen()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("serving", os.environ["KESTREL_STACK_MARK"], flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    script = tmp_path / "stand-in"
    script.write_text(f"#!{sys.executable}\n{STAND_IN}")
    script.chmod(0o755)
    service = Service("worker", str(script), "kestrel.ingest.settings:IngestSettings", "grpc_port", consumer=True)
    supervisor = Supervisor(tmp_path, {"KESTREL_STACK_MARK": "from-stack-env"}, [service], {"worker": 2})
    await supervisor.start()
    task = asyncio.create_task(supervisor.supervise())
    await supervisor.wait_ready(timeout=30)
    yield supervisor
    task.cancel()
    await supervisor.stop()


def rows(state_dir: Path) -> dict[str, dict]:
    return {row["name"]: row for row in control.read_status(state_dir)}


async def until(check, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_replicas_are_processes_of_their_own_with_log_and_pid_files(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    found = rows(tmp_path)
    assert set(found) == {"worker-0", "worker-1"}
    pids = {row["pid"] for row in found.values()}
    assert len(pids) == 2 and os.getpid() not in pids and all(is_running(pid) for pid in pids)
    for name, row in found.items():
        assert row["state"] == "running" and row["restarts"] == 0
        assert (tmp_path / "services" / f"{name}.pid").read_text().strip() == str(row["pid"])
        log = Path(row["log"])
        await until(lambda log=log: "serving from-stack-env" in log.read_text())
    assert found["worker-0"]["ports"]["grpc_port"] != found["worker-1"]["ports"]["grpc_port"]
    lines = control.format_rows(list(found.values()))
    assert lines[0].split()[:4] == ["SERVICE", "REPLICA", "PID", "STATE"] and "running" in lines[1]


async def test_a_crashed_replica_is_restarted(supervisor: Supervisor, tmp_path: Path) -> None:
    crashed = rows(tmp_path)["worker-1"]
    os.kill(crashed["pid"], signal.SIGKILL)  # not through `kill`: a crash
    await until(lambda: (row := rows(tmp_path)["worker-1"])["restarts"] == 1 and row["state"] == "running")
    assert rows(tmp_path)["worker-1"]["pid"] != crashed["pid"]
    assert rows(tmp_path)["worker-0"]["restarts"] == 0


async def test_a_replica_whose_port_was_taken_while_down_comes_back_on_another(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    crashed, other = rows(tmp_path)["worker-1"], rows(tmp_path)["worker-0"]["ports"]["grpc_port"]
    old = crashed["ports"]["grpc_port"]
    os.kill(crashed["pid"], signal.SIGKILL)
    await until(lambda: not is_running(crashed["pid"]))
    with socket.socket() as holder:  # another process's server on the port, before the restart (0.5 s)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", old))
        holder.listen()
        await until(lambda: (row := rows(tmp_path)["worker-1"])["restarts"] >= 1 and row["state"] == "running")
        moved = rows(tmp_path)["worker-1"]["ports"]["grpc_port"]
        assert moved != old and moved != other
        assert rows(tmp_path)["worker-0"]["ports"]["grpc_port"] == other  # worker-0 keeps its own
        await supervisor.wait_ready(timeout=15)
        log = Path(crashed["log"])
        assert log.read_text().count("serving from-stack-env") == 2  # the restart served, on the new port


async def test_crash_kills_a_replica_the_supervisor_restarts_and_times_its_return(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    crashed = rows(tmp_path)["worker-1"]
    seconds = await control.crash(tmp_path, "worker", replica=1)
    assert seconds is not None and backoff(1) <= seconds < 15
    after = rows(tmp_path)["worker-1"]
    assert after["state"] == "running" and after["restarts"] == 1 and after["pid"] != crashed["pid"]
    assert not is_running(crashed["pid"]) and not list((tmp_path / "services").glob("*.held"))


async def test_kill_holds_a_replica_down_until_restart(supervisor: Supervisor, tmp_path: Path) -> None:
    before = rows(tmp_path)
    assert await control.kill(tmp_path, "worker", replica=0) == ["worker-0"]
    assert not is_running(before["worker-0"]["pid"])
    await asyncio.sleep(2 * backoff(1) + 0.5)  # longer than a crash would wait for its restart
    assert rows(tmp_path)["worker-0"]["state"] == "killed" and rows(tmp_path)["worker-1"]["state"] == "running"

    assert await control.restart(tmp_path, "worker") == ["worker-0", "worker-1"]
    after = rows(tmp_path)
    assert all(row["state"] == "running" for row in after.values())
    assert not {row["pid"] for row in after.values()} & {row["pid"] for row in before.values()}
    assert not list((tmp_path / "services").glob("*.held"))


async def test_stop_ends_every_replica(tmp_path: Path, supervisor: Supervisor) -> None:
    pids = [row["pid"] for row in rows(tmp_path).values()]
    await supervisor.stop()
    assert not any(is_running(pid) for pid in pids) and control.read_status(tmp_path) == []


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0] and backoff(50) == 30.0


async def test_kill_and_restart_refuse_when_no_supervisor_runs(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "services.json").write_text(
        '{"supervisor": {"pid": 999999999, "started": 1}, "replicas": [{"name": "worker-0", "service": "worker", '
        '"replica": 0, "pid": 999999998, "state": "running", "restarts": 0, "log": "x"}]}'
    )
    with pytest.raises(ComponentError, match="no `kestrel-stack up` supervises"):
        await control.restart(tmp_path, "worker", timeout=1)
    assert control.read_status(tmp_path)[0]["state"] == "exited"  # its pid is gone


def test_ps_columns_stay_aligned_past_sixteen_character_names() -> None:
    row = {"replica": 0, "pid": 42, "state": "running", "since": 0.0, "restarts": 0, "log": "x.log"}
    lines = control.format_rows([dict(row, service="prediction-logger"), dict(row, service="ingest")], now=60.0)
    ends = {line.index(" LOG") if i == 0 else line.index(" x.log") for i, line in enumerate(lines)}
    assert len(ends) == 1  # the log column starts at the same place on every line
