"""What a running stack leaves on disk (stack.json, stack.env), so that another process can find and stop it."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kestrel.devstack.control import read_status, remove_status
from kestrel.devstack.process import is_running, start_time, terminate

RECORD_FILE = "stack.json"
ENV_FILE = "stack.env"
PORTS_FILE = "ports.json"


@dataclass
class StackRecord:
    """Pids (with kernel start times, so a recycled pid is never signalled), ports and endpoints."""

    owner_pid: int
    owner_started: int | None
    env: dict[str, str]
    ports: dict[str, int]
    components: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, env: dict[str, str], ports: dict[str, int], components: dict[str, dict[str, Any]]) -> StackRecord:
        return cls(os.getpid(), start_time(os.getpid()), env, ports, components)

    @classmethod
    def load(cls, state_dir: Path) -> StackRecord | None:
        try:
            return cls(**json.loads((Path(state_dir) / RECORD_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, state_dir: Path) -> None:
        tmp = Path(state_dir) / f".{RECORD_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(Path(state_dir) / RECORD_FILE)  # atomic: a concurrent `down` never reads half a file

    def alive(self) -> dict[str, bool]:
        return {name: is_running(c["pid"], c.get("started")) for name, c in self.components.items()}


def find_running(state_dir: Path) -> StackRecord | None:
    """The record of a stack with at least one live component in `state_dir`, if any."""
    record = StackRecord.load(state_dir)
    return record if record is not None and any(record.alive().values()) else None


def write_env_file(state_dir: Path, env: dict[str, str]) -> Path:
    path = Path(state_dir) / ENV_FILE
    lines = [
        "# What the services read to use the embedded stack (kestrel-stack up); removed by kestrel-stack down.",
        "# set -a; . .kestrel/stack/stack.env; set +a   then e.g. kestrel-inference",
    ]
    path.write_text("\n".join([*lines, *(f"{key}={value}" for key, value in env.items())]) + "\n")
    return path


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            env[key.strip()] = value.strip()
    return env


def save_ports(state_dir: Path, ports: dict[str, int]) -> None:
    """Kept after `down`: the next `up` asks for the same ports, so endpoints stay stable across restarts."""
    (Path(state_dir) / PORTS_FILE).write_text(json.dumps(ports) + "\n")


def load_ports(state_dir: Path) -> dict[str, int]:
    try:
        return {str(k): int(v) for k, v in json.loads((Path(state_dir) / PORTS_FILE).read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def remove_record(state_dir: Path) -> None:
    for name in (RECORD_FILE, ENV_FILE):
        (Path(state_dir) / name).unlink(missing_ok=True)


async def down(state_dir: Path, owner_grace: float = 60.0) -> list[str]:
    """Stop every process recorded in `state_dir` (services, then Triton, then the rest); returns the names
    that were running.

    A foreground `kestrel-stack up` still running is asked (SIGTERM) to stop its own stack first, so it
    exits cleanly instead of reporting its servers as crashed.
    """
    record = StackRecord.load(state_dir)
    if record is None:
        return []
    if record.owner_pid != os.getpid() and is_running(record.owner_pid, record.owner_started):
        services = [row["name"] for row in read_status(state_dir) if row["state"] == "running"]
        alive_before = services + [name for name, ok in record.alive().items() if ok]
        await terminate(record.owner_pid, signal.SIGTERM, owner_grace, record.owner_started)
        if StackRecord.load(state_dir) is None:
            return alive_before
    supervised = {row["name"]: row for row in read_status(state_dir) if row["pid"]}
    first = {k: v for k, v in record.components.items() if k == "triton"}
    rest = {k: v for k, v in record.components.items() if k != "triton"}
    stopped = [name for group in (supervised, first, rest) for name, ok in await _stop_all(group) if ok]
    remove_status(state_dir)
    remove_record(state_dir)
    return stopped


async def _stop_all(components: dict[str, dict[str, Any]]) -> list[tuple[str, bool]]:
    results = await asyncio.gather(*(_stop(c) for c in components.values()))
    return list(zip(components, results, strict=True))


async def _stop(component: dict[str, Any]) -> bool:
    pid, started = component["pid"], component.get("started")
    sig, grace = component.get("stop_signal", signal.SIGTERM), component.get("stop_grace", 15.0)
    was_running = await terminate(pid, sig, grace, started)
    if was_running:
        _kill_group_leftovers(pid)
    for leftover in glob.glob(component.get("shm_glob") or ""):
        Path(leftover).unlink(missing_ok=True)
    return was_running


def _kill_group_leftovers(pgid: int) -> None:
    """Children a server left behind in its session (each server leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
