"""Local server processes: spawn with a log file, wait until ready, stop by signal (also from another process)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from kestrel.common.errors import KestrelError

log = structlog.get_logger()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ComponentError(KestrelError):
    """A stack component failed to prepare, start or become ready; carries the tail of its log."""

    def __init__(self, component: str, message: str, log_path: Path | None = None) -> None:
        text = f"{component}: {message}"
        if log_path is not None and (tail := log_tail(log_path)):
            text += f"\n--- last lines of {log_path} ---\n{tail}"
        super().__init__(text)
        self.component = component


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_bytes()[-64_000:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot): tells a process from a later one reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])


def is_running(pid: int, started: int | None = None) -> bool:
    now = start_time(pid)
    return now is not None and (started is None or now == started)


async def terminate(pid: int, sig: int = signal.SIGTERM, grace: float = 15.0, started: int | None = None) -> bool:
    """Signal `pid`, wait up to `grace` seconds, then SIGKILL its process group; True if it was running."""
    if not is_running(pid, started):
        return False
    _signal(pid, sig, group=False)
    if await _wait_gone(pid, started, grace):
        return True
    log.warning("process did not stop in time, killing it", pid=pid, grace_s=grace)
    _signal(pid, signal.SIGKILL, group=True)
    await _wait_gone(pid, started, 5.0)
    return True


async def run_once(component: str, argv: Sequence[str], log_path: Path, **popen: Any) -> None:
    """Run a preparation command (initdb, storage format, mvn) to completion, output appended to the log."""
    with log_path.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        run = functools.partial(
            subprocess.run, list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        result = await asyncio.to_thread(run, **popen)
    if result.returncode != 0:
        raise ComponentError(component, f"`{argv[0]}` failed with exit code {result.returncode}", log_path)


class ServerProcess:
    """One long-running server: subclasses say how to prepare, what to run and how to probe readiness."""

    name = "server"
    stop_signal: int = signal.SIGTERM
    stop_grace = 15.0
    start_timeout = 60.0
    die_with_parent = False
    """Test fixtures set this: the server gets SIGTERM if the process that started it dies (a killed
    pytest must not leave brokers behind). `kestrel-stack up --detach` leaves it off on purpose."""

    def __init__(self, state_dir: Path) -> None:
        self.home = Path(state_dir) / self.name
        self.log_path = self.home / f"{self.name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def exit_code(self) -> int | None:
        """None while running (or never started); the exit status once the process died."""
        return self._popen.poll() if self._popen else None

    async def start(self) -> None:
        if self._popen is not None:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(b"")
        await self._prepare()
        self._popen = self._spawn()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info("component ready", component=self.name, pid=self.pid, log=str(self.log_path))

    async def stop(self) -> None:
        popen, self._popen = self._popen, None
        if popen is not None and popen.poll() is None:
            await terminate(popen.pid, self.stop_signal, self.stop_grace)
            popen.poll()

    def record(self) -> dict[str, Any]:
        """What `kestrel-stack down` in another process needs to stop this server safely."""
        pid = self.pid
        return {
            "pid": pid,
            "started": start_time(pid) if pid else None,
            "stop_signal": int(self.stop_signal),
            "stop_grace": self.stop_grace,
            "log": str(self.log_path),
        }

    async def _prepare(self) -> None:
        """Write configs, initialise data directories; runs before every start."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    async def _probe(self) -> None:
        """Return when the server answers; raise otherwise."""
        raise NotImplementedError

    def _popen_options(self) -> dict[str, Any]:
        return {}

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Own session: Ctrl-C in the terminal reaches only kestrel-stack, which stops servers in order,
        # and servers started with --detach outlive it.
        options = self._popen_options()
        if self.die_with_parent:
            # Runs in the child after any user/group switch, which would otherwise clear the setting.
            options["preexec_fn"] = parent_death_signal
        with self.log_path.open("ab") as out:
            return subprocess.Popen(
                self._command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **options,
            )

    async def _wait_ready(self) -> None:
        assert self._popen is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: BaseException | None = None
        while (code := self._popen.poll()) is None:
            try:
                await self._probe()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last_error = exc
            if time.monotonic() > deadline:
                message = f"not ready after {self.start_timeout:.0f}s: {last_error!r}"
                raise ComponentError(self.name, message, self.log_path)
            await asyncio.sleep(0.2)
        raise ComponentError(self.name, f"exited with code {code} during start-up", self.log_path)


def parent_death_signal() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


async def _wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid, started):
            return True
        await asyncio.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie (no-op for foreign pids)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
