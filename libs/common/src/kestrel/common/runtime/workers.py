"""Several processes of one gRPC service on one port, as gunicorn and uvicorn run workers: the kernel spreads
connections over sockets bound with SO_REUSEPORT. The parent starts them, passes SIGTERM and SIGINT on, and ends
when one of them does (stopping the others), so whatever supervises the parent sees one unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

WORKER_INDEX = "KESTREL_WORKER_INDEX"
"""Set in a worker's environment: it serves, it does not start workers of its own."""


def is_worker() -> bool:
    return WORKER_INDEX in os.environ


def worker_env(prefix: str, index: int, metrics_port: int) -> dict[str, str]:
    """What worker `index` gets on top of the parent's environment: one process, the shared port, and a
    metrics port of its own (METRICS_PORT + index; 0 stays 0, any free port). Worker 0 alone serves the HTTP
    health port: the probe reaches one process, and the parent ends (failing the probe) when any worker ends."""
    env = {
        WORKER_INDEX: str(index),
        f"{prefix}WORKERS": "1",
        f"{prefix}GRPC_REUSEPORT": "true",
        f"{prefix}METRICS_PORT": str(metrics_port + index if metrics_port else 0),
    }
    return env | ({f"{prefix}HEALTH_PORT": "0"} if index else {})


def run_workers(name: str, count: int, prefix: str, metrics_port: int, argv: Sequence[str] | None = None) -> int:
    """Runs `count` copies of this command as workers until a signal or the first one's end; its exit status
    (0 after a requested stop)."""
    command = list(argv or [sys.executable, *sys.argv])
    children = [
        subprocess.Popen(command, env={**os.environ, **worker_env(prefix, i, metrics_port)}) for i in range(count)
    ]
    stopping: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        _signal_all(children, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    first = _first_exit(children)
    if not stopping:
        index = next(i for i, child in enumerate(children) if child.returncode is not None)
        print(f"kestrel-{name}: worker {index} exited with status {first}; stopping the others", file=sys.stderr)
        _signal_all(children, signal.SIGTERM)
    codes = [child.wait() for child in children]
    return 0 if stopping and all(code in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes) else first or 1


def _first_exit(children: Sequence[subprocess.Popen[bytes]]) -> int:
    by_pid: Mapping[int, subprocess.Popen[bytes]] = {child.pid: child for child in children}
    while True:
        pid, status = os.wait()
        if pid in by_pid:
            by_pid[pid].returncode = os.waitstatus_to_exitcode(status)
            return by_pid[pid].returncode


def _signal_all(children: Sequence[subprocess.Popen[bytes]], signum: int) -> None:
    for child in children:
        if child.returncode is None:
            child.send_signal(signum)
