"""ServerProcess life cycle with stand-in commands: log tails in errors, SIGTERM then SIGKILL."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from kestrel.devstack.process import ComponentError, ServerProcess, is_running, start_time, terminate


class Scripted(ServerProcess):
    """Runs a Python snippet; ready once the file `ready` exists in its home."""

    name = "scripted"
    start_timeout = 10.0

    def __init__(self, state_dir: Path, code: str) -> None:
        super().__init__(state_dir)
        self.code = code

    def _command(self) -> list[str]:
        return [sys.executable, "-c", self.code]

    def _popen_options(self) -> dict[str, object]:
        return {"cwd": self.home}

    async def _probe(self) -> None:
        if not (self.home / "ready").exists():
            raise ComponentError(self.name, "not yet")


SERVE = "import pathlib, time; pathlib.Path('ready').touch(); time.sleep(60)"
STUBBORN = "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SERVE.split("; ", 1)[1]


async def test_start_waits_for_readiness_and_stop_ends_the_process(tmp_path: Path) -> None:
    server = Scripted(tmp_path, SERVE)
    await server.start()
    pid = server.pid
    assert pid is not None and is_running(pid) and server.exit_code is None
    await server.stop()
    assert not is_running(pid)


async def test_early_exit_raises_with_the_log_tail(tmp_path: Path) -> None:
    server = Scripted(tmp_path, "print('disk on fire', flush=True); raise SystemExit(3)")
    with pytest.raises(ComponentError, match=r"(?s)exited with code 3.*disk on fire"):
        await server.start()
    assert server.pid is None


async def test_never_ready_times_out_and_leaves_nothing_running(tmp_path: Path) -> None:
    server = Scripted(tmp_path, "import time; print('warming up', flush=True); time.sleep(60)")
    server.start_timeout = 0.5
    with pytest.raises(ComponentError, match=r"(?s)not ready after.*warming up"):
        await server.start()
    assert server.pid is None


async def test_terminate_escalates_to_sigkill_after_the_grace(tmp_path: Path) -> None:
    server = Scripted(tmp_path, STUBBORN)
    await server.start()
    pid = server.pid
    assert pid is not None
    assert await terminate(pid, signal.SIGTERM, grace=0.5)
    assert not is_running(pid)
    await server.stop()


async def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    server = Scripted(tmp_path, SERVE)
    await server.start()
    pid = server.pid
    assert pid is not None
    started = start_time(pid)
    assert started is not None
    assert not await terminate(pid, signal.SIGTERM, grace=0.5, started=started + 1)
    assert is_running(pid)
    await server.stop()
