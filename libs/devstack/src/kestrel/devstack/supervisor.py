"""Runs each service replica as its own OS process (own log and pid file) and restarts it when it crashes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from kestrel.devstack import control
from kestrel.devstack.ports import free_port, is_free, wait_connectable
from kestrel.devstack.process import ComponentError, log_tail, parent_death_signal, start_time, terminate
from kestrel.devstack.services import HOST, Service, replica_env

log = structlog.get_logger()

POLL_S = 0.2
STABLE_S = 30.0
"""A replica that ran this long before it crashed restarts after the shortest backoff again."""
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 30.0
"""SIGTERM, then this long to drain and commit, then SIGKILL."""


def backoff(failures: int) -> float:
    """Seconds before restarting after the n-th crash in a row: 0.5, 1, 2, ... up to MAX_BACKOFF_S."""
    return min(MAX_BACKOFF_S, 0.5 * 2 ** max(failures - 1, 0))


@dataclass
class Replica:
    service: Service
    index: int
    ports: dict[str, int]
    home: Path
    popen: subprocess.Popen[bytes] | None = None
    started: int | None = None
    state: str = "stopped"
    """running, exited (crashed; restarts after its backoff), killed (held down by `kill`), stopped."""
    restarts: int = 0
    since: float | None = None
    failures: int = 0
    retry_at: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.service.name}-{self.index}"

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.home / f"{self.name}.pid"

    def address(self, port_field: str) -> str:
        return f"{HOST}:{self.ports[port_field]}"

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service.name,
            "replica": self.index,
            "pid": self.popen.pid if self.popen else None,
            "started": self.started,
            "state": self.state,
            "restarts": self.restarts,
            "since": self.since,
            "log": str(self.log_path),
            "ports": self.ports,
            "ready_port": self.ports[self.service.ready_port],
            "stop_signal": int(signal.SIGTERM),
            "stop_grace": STOP_GRACE_S,
        }


class Supervisor:
    """`await start()`, run `supervise()` as a task until cancelled, then `await stop()`."""

    def __init__(
        self,
        state_dir: Path,
        env: Mapping[str, str],
        services: Sequence[Service],
        replicas: Mapping[str, int] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.env = dict(env)
        home = control.services_dir(self.state_dir)
        taken: set[int] = set()
        self.replicas = [
            Replica(s, i, _pick_ports(s, taken), home) for s in services for i in range((replicas or {}).get(s.name, 1))
        ]

    def first(self, service: str) -> Replica:
        return next(r for r in self.replicas if r.service.name == service)

    async def start(self) -> None:
        control.services_dir(self.state_dir).mkdir(parents=True, exist_ok=True)
        for replica in self.replicas:
            control.held_marker(self.state_dir, replica.name).unlink(missing_ok=True)
            control.restart_marker(self.state_dir, replica.name).unlink(missing_ok=True)
            self._spawn(replica)
        self._write()

    async def wait_ready(self, timeout: float = 180.0) -> None:
        """Until every replica accepts connections on its ready port (crashes meanwhile are restarted)."""
        deadline = time.monotonic() + timeout
        for replica in self.replicas:
            while not await _connectable(replica.ports[replica.service.ready_port]):
                if time.monotonic() > deadline:
                    raise ComponentError(replica.name, f"not serving after {timeout:.0f}s", replica.log_path)
                await asyncio.sleep(POLL_S)
        log.info("services ready", replicas=len(self.replicas))

    async def supervise(self) -> None:
        await asyncio.gather(*(self._watch(r) for r in self.replicas))

    async def stop(self) -> None:
        await asyncio.gather(*(self._stop(r) for r in self.replicas))
        control.remove_status(self.state_dir)

    async def _watch(self, replica: Replica) -> None:
        while True:
            await self._step(replica)
            await asyncio.sleep(POLL_S)

    async def _step(self, r: Replica) -> None:
        if control.restart_marker(self.state_dir, r.name).exists():
            await self._restart(r)
        elif r.state == "running" and r.popen is not None and (code := r.popen.poll()) is not None:
            self._exited(r, code)
        elif r.state == "exited" and control.held_marker(self.state_dir, r.name).exists():
            self._set(r, "killed")
        elif r.state == "exited" and time.monotonic() >= r.retry_at:
            r.restarts += 1
            self._move_taken_ports(r)
            self._spawn(r)
            self._write()

    def _exited(self, r: Replica, code: int) -> None:
        if control.held_marker(self.state_dir, r.name).exists():
            log.warning("service killed; down until `kestrel-stack restart`", replica=r.name, code=code)
            self._set(r, "killed")
            return
        ran = time.time() - (r.since or time.time())
        r.failures = 1 if ran >= STABLE_S else r.failures + 1
        r.retry_at = time.monotonic() + backoff(r.failures)
        log.error(
            "service exited; restarting",
            replica=r.name,
            code=code,
            after_s=backoff(r.failures),
            log=str(r.log_path),
            tail=log_tail(r.log_path, 5),
        )
        self._set(r, "exited")

    async def _restart(self, r: Replica) -> None:
        await self._terminate(r)
        control.held_marker(self.state_dir, r.name).unlink(missing_ok=True)
        control.restart_marker(self.state_dir, r.name).unlink(missing_ok=True)
        r.failures, r.restarts = 0, r.restarts + 1
        log.info("restarting service", replica=r.name)
        self._spawn(r)
        self._write()

    async def _stop(self, r: Replica) -> None:
        await self._terminate(r)
        r.pid_path.unlink(missing_ok=True)
        self._set(r, "stopped")

    async def _terminate(self, r: Replica) -> None:
        if r.popen is not None and r.popen.poll() is None:
            await terminate(r.popen.pid, signal.SIGTERM, STOP_GRACE_S, r.started)
            r.popen.poll()

    def _move_taken_ports(self, r: Replica) -> None:
        """A port another process took while the replica was down would fail every restart: pick another."""
        for name, port in r.ports.items():
            if not is_free(port):
                moved = _unused_port({p for other in self.replicas for p in other.ports.values()})
                log.warning("port taken; replica moves", replica=r.name, field=name, old=port, new=moved)
                r.ports[name] = moved

    def _spawn(self, r: Replica) -> None:
        env = {**os.environ, **self.env, **replica_env(r.service, r.ports), "PYTHONUNBUFFERED": "1"}
        with r.log_path.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} kestrel-stack starts {r.name}\n".encode())
            out.flush()
            # Own session: Ctrl-C reaches only kestrel-stack, which stops services before the servers;
            # the parent-death signal takes the replica down with a killed kestrel-stack.
            r.popen = subprocess.Popen(
                [_script(r.service.script)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=parent_death_signal,
            )
        r.started, r.since, r.state = start_time(r.popen.pid), time.time(), "running"
        r.pid_path.write_text(f"{r.popen.pid}\n")

    def _set(self, r: Replica, state: str) -> None:
        r.state = state
        self._write()

    def _write(self) -> None:
        control.write_status(self.state_dir, [r.row() for r in self.replicas])


def _pick_ports(service: Service, taken: set[int]) -> dict[str, int]:
    """The settings' default port for the first replica that asks (stable addresses), else a free one."""
    ports = {}
    for name in service.port_fields:
        default = service.settings_class.model_fields[name].default
        port = default if default and default not in taken and is_free(default) else _unused_port(taken)
        taken.add(port)
        ports[name] = port
    return ports


def _unused_port(taken: set[int]) -> int:
    """A free port no replica of this stack has been given."""
    port = free_port()
    while port in taken:
        port = free_port()
    return port


def _script(name: str) -> str:
    """The console script next to this interpreter (the workspace venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


async def _connectable(port: int) -> bool:
    try:
        await wait_connectable(port)
    except OSError:
        return False
    return True
