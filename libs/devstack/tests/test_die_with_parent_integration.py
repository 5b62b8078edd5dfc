"""A server started by a test fixture dies with the process that started it (a killed pytest leaks nothing)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kestrel.devstack.process import is_running

pytestmark = pytest.mark.integration

CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from kestrel.devstack.redis_server import RedisServer

    async def main():
        server = RedisServer(Path(sys.argv[1]))
        server.die_with_parent = {flag}
        await server.start()
        print("PID", server.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


def start_child(tmp_path, flag: bool) -> tuple[subprocess.Popen, int]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(flag=flag), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    for line in child.stdout:  # log lines come first on stdout
        if line.startswith("PID "):
            return child, int(line.split()[1])
    child.kill()
    raise AssertionError("child did not start redis")


def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not is_running(pid)


def test_server_dies_when_its_starter_is_killed(tmp_path):
    child, server_pid = start_child(tmp_path, True)
    child.kill()
    child.wait()
    assert wait_gone(server_pid)


def test_without_the_flag_the_server_outlives_its_starter(tmp_path):
    child, server_pid = start_child(tmp_path, False)
    child.kill()
    child.wait()
    try:
        assert not wait_gone(server_pid, timeout_s=1.0)
    finally:
        os.kill(server_pid, signal.SIGKILL)
