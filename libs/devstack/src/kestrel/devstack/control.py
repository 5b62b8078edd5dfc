"""How `ps`, `kill` and `restart` (separate CLI runs) talk to the supervisor inside a running `kestrel-stack up`.

Everything goes through files in `<state_dir>/services/`, so no socket or protocol is needed:
- `services.json`: the supervisor's view (pid with kernel start time, state, restarts, log), rewritten atomically
  on every change; `ps` reads it and checks each pid itself.
- `<replica>.held`: written by `kill` before it sends SIGKILL. The supervisor sees the marker when the process
  dies and leaves the replica down (a fault drill) instead of restarting it.
- `<replica>.restart`: written by `restart`; the supervisor stops the replica (SIGTERM) if it runs, starts it
  again at once, and removes both markers.
- `crash` writes nothing: it SIGKILLs a replica the way a real crash would, and the supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kestrel.devstack.process import ComponentError, is_running, start_time
from kestrel.devstack.services import HOST

SERVICES_DIR = "services"
STATUS_FILE = "services.json"


def services_dir(state_dir: Path) -> Path:
    return Path(state_dir) / SERVICES_DIR


def held_marker(state_dir: Path, replica: str) -> Path:
    return services_dir(state_dir) / f"{replica}.held"


def restart_marker(state_dir: Path, replica: str) -> Path:
    return services_dir(state_dir) / f"{replica}.restart"


def write_status(state_dir: Path, rows: list[dict[str, Any]]) -> None:
    tmp = services_dir(state_dir) / f".{STATUS_FILE}.tmp"
    supervisor = {"pid": os.getpid(), "started": start_time(os.getpid())}
    tmp.write_text(json.dumps({"supervisor": supervisor, "replicas": rows}, indent=2) + "\n")
    tmp.replace(services_dir(state_dir) / STATUS_FILE)


def read_status(state_dir: Path) -> list[dict[str, Any]]:
    """The replicas as the supervisor last wrote them; a row whose process is gone reads as exited."""
    rows: list[dict[str, Any]] = _load(state_dir).get("replicas", [])
    for row in rows:
        if row["state"] == "running" and not is_running(row["pid"], row.get("started")):
            row["state"] = "exited"
    return rows


def supervisor_running(state_dir: Path) -> bool:
    supervisor = _load(state_dir).get("supervisor") or {}
    return bool(supervisor) and is_running(supervisor["pid"], supervisor.get("started"))


def _load(state_dir: Path) -> dict[str, Any]:
    try:
        found = json.loads((services_dir(state_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def remove_status(state_dir: Path) -> None:
    (services_dir(state_dir) / STATUS_FILE).unlink(missing_ok=True)


def select(state_dir: Path, service: str, replica: int | None = None) -> list[dict[str, Any]]:
    if not supervisor_running(state_dir):
        raise ComponentError("stack", f"no `kestrel-stack up` supervises services in {state_dir}")
    rows = [r for r in read_status(state_dir) if r["service"] == service and replica in (None, r["replica"])]
    if not rows:
        known = sorted({r["service"] for r in read_status(state_dir)})
        where = f"replica {replica} of {service}" if replica is not None else f"service {service}"
        raise ComponentError("stack", f"no {where} in {state_dir}; services: {', '.join(known) or 'none'}")
    return rows


async def kill(state_dir: Path, service: str, replica: int | None = None, timeout: float = 30.0) -> list[str]:
    """SIGKILL the service's replicas and keep them down until `restart`; returns the replicas killed."""
    killed = []
    for row in select(state_dir, service, replica):
        held_marker(state_dir, row["name"]).touch()  # first, so the supervisor never restarts it
        if row["state"] == "running":
            os.kill(row["pid"], signal.SIGKILL)
            killed.append(row["name"])
    names = {row["name"] for row in select(state_dir, service, replica)}
    await _wait(state_dir, lambda rows: all(r["state"] == "killed" for r in rows if r["name"] in names), timeout)
    return killed


async def crash(state_dir: Path, service: str, replica: int = 0, timeout: float = 120.0) -> float | None:
    """SIGKILL one running replica without holding it down (a crash: the supervisor restarts it after its
    backoff); returns the seconds until the new process accepted connections on its ready port, or None when
    it did not within `timeout`."""
    row = next(r for r in select(state_dir, service, replica) if r["state"] == "running")
    ready_port = row["ready_port"]
    began = time.monotonic()
    os.kill(row["pid"], signal.SIGKILL)

    def replaced(rows: list[dict[str, Any]]) -> bool:
        return any(r["name"] == row["name"] and r["state"] == "running" and r["pid"] != row["pid"] for r in rows)

    try:
        await _wait(state_dir, replaced, timeout)
        while not await _accepts(ready_port):
            if time.monotonic() - began > timeout:
                return None
            await asyncio.sleep(0.1)
    except ComponentError:
        return None
    return time.monotonic() - began


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return False
    writer.close()
    return True


async def restart(state_dir: Path, service: str, replica: int | None = None, timeout: float = 120.0) -> list[str]:
    """Ask the supervisor to (re)start the replicas; returns once each runs with a new pid."""
    before = {row["name"]: row["pid"] for row in select(state_dir, service, replica)}
    for name in before:
        restart_marker(state_dir, name).touch()

    def restarted(rows: list[dict[str, Any]]) -> bool:
        now = {r["name"]: r for r in rows if r["name"] in before}
        return all(r["state"] == "running" and r["pid"] != before[n] for n, r in now.items())

    await _wait(state_dir, restarted, timeout)
    return sorted(before)


async def _wait(state_dir: Path, done: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done(read_status(state_dir)):
        if time.monotonic() > deadline:
            raise ComponentError(
                "stack",
                f"the supervisor did not answer within {timeout:.0f}s; see `kestrel-stack ps` and the service logs",
            )
        await asyncio.sleep(0.1)


def format_rows(rows: list[dict[str, Any]], now: float | None = None) -> list[str]:
    """`kestrel-stack ps` lines: name, replica, pid, state, uptime, restarts, log."""
    now = time.time() if now is None else now
    width = max([16, *(len(r["service"]) for r in rows)])  # the longest name keeps the columns aligned
    lines = [f"{'SERVICE':{width}} {'REPLICA':>7} {'PID':>8} {'STATE':8} {'UPTIME':>8} {'RESTARTS':>8}  LOG"]
    for r in rows:
        uptime = _duration(now - r["since"]) if r["state"] == "running" and r.get("since") else "-"
        lines.append(
            f"{r['service']:{width}} {r['replica']:>7} {r['pid'] or '-':>8} {r['state']:8} {uptime:>8} "
            f"{r['restarts']:>8}  {r['log']}"
        )
    return lines


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
