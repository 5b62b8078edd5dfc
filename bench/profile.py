"""py-spy profiles of the service processes a bench runs, and their top frames as a markdown table."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE_HZ = 250
"""Samples per second: a few thousand samples over a bench phase, light on two shared cores."""
IDLE = re.compile(r"^(\w+\.)?(select|poll) \(selectors\.py")
"""Leaf frames of an event loop waiting for I/O (`EpollSelector.select (selectors.py)`, as py-spy names
them with their class): left out, so shares are of the time the process computes."""
NATIVE_WAIT = re.compile(
    r"^(epoll_wait|poll|pthread_cond_(timed)?wait|cnd_timedwait|PyThread_acquire_lock_timed|sem_(timed)?wait) \("
)
"""Native frames of a thread waiting (a BENCH_PROFILE_NATIVE profile: gRPC's poller in epoll, librdkafka's
poll in a condition wait, an idle executor thread on its lock): left out wherever they are on the stack."""
_LINE = re.compile(r":\d+\)$")


@contextlib.contextmanager
def recording(pid: int, out: Path) -> Iterator[Path]:
    """py-spy samples the running process `pid` until the block ends (it is told to stop with SIGINT, which
    makes it write `out`: collapsed stacks, one "frame;frame;... count" line each). --nonblocking: the
    service is not paused to be read, so the profile barely slows what it measures. BENCH_PROFILE_NATIVE=1
    samples native frames too (Cython, C: gRPC's core, librdkafka's calls), pausing the process to read them.
    BENCH_PROFILE_GIL=1 keeps only the samples of the thread holding the GIL: the Python work, without the
    threads that wait in C with the GIL released (the producer's poll thread in librdkafka's poll(), which
    --nonblocking alone cannot tell from work)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [spy, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw"]
    command += ["--native"] if os.environ.get("BENCH_PROFILE_NATIVE") else ["--nonblocking"]
    command += ["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else []
    proc = subprocess.Popen([*command, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def top_frames(collapsed: str) -> tuple[int, Counter[str], Counter[str]]:
    """(busy samples, samples per function as the running frame, samples per function anywhere on the stack),
    over the samples not waiting in select. Line numbers are dropped, so a function is one entry."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    busy = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        if IDLE.match(frames[-1]) or any(NATIVE_WAIT.match(frame) for frame in frames):
            continue
        busy += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            total[frame] += int(count)
    return busy, own, total


def render_top(name: str, path: Path, n: int = 15) -> str:
    """The profile's top functions by their own time, then Kestrel's functions by the time spent in them and
    below (where a batch's time goes), as markdown tables under a one-line heading."""
    busy, own, total = top_frames(path.read_text())
    ours = [frame for frame, _ in total.most_common() if _OURS.search(frame)][:n]
    lines = [f"{name}: {busy:,} busy samples at {RATE_HZ} Hz ({path.name})", "", "| self | total | function |"]
    lines += ["|---|---|---|", *(_line(f, own, total, busy) for f, _ in own.most_common(n))]
    lines += ["", "| self | total | Kestrel function |", "|---|---|---|", *(_line(f, own, total, busy) for f in ours)]
    return "\n".join(lines)


_OURS = re.compile(r"\((common|featureset|inference|features|feature_writer|online_store)/")


def _line(frame: str, own: Counter[str], total: Counter[str], busy: int) -> str:
    return f"| {own[frame] / busy:.1%} | {total[frame] / busy:.1%} | `{frame}` |"
