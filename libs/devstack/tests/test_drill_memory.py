"""Reading a process's resident memory from /proc."""

from __future__ import annotations

import os
import subprocess
import sys

from kestrel.devstack.drill.memory import rss_kib


def test_rss_of_a_live_process_and_none_once_gone():
    assert (rss_kib(os.getpid()) or 0) > 1024
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert rss_kib(child.pid) is None
