"""py-spy profiles of the service processes a bench runs, and their top frames as a markdown table."""

from __future__ import annotations

import contextlib
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
IDLE = ("select (selectors.py", "poll (selectors.py")
"""Leaf frames of an event loop waiting for I/O: left out, so shares are of the time the process computes."""
_LINE = re.compile(r":\d+\)$")


@contextlib.contextmanager
def recording(pid: int, out: Path) -> Iterator[Path]:
    """py-spy samples the running process `pid` until the block ends (it is told to stop with SIGINT, which
    makes it write `out`: collapsed stacks, one "frame;frame;... count" line each). --nonblocking: the
    service is not paused to be read, so the profile barely slows what it measures."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [spy, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--format", "raw", "--nonblocking"]
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


def top_frames(collapsed: str, n: int = 15) -> tuple[int, list[tuple[str, float, float]]]:
    """(busy samples, [(function, self share, total share)]) over the samples not waiting in select,
    functions by their own time, with the time spent in them and below. Line numbers are dropped, so a
    function is one entry."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    busy = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        if frames[-1].startswith(IDLE):
            continue
        busy += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            total[frame] += int(count)
    return busy, [(frame, own[frame] / busy, total[frame] / busy) for frame, _ in own.most_common(n)]


def render_top(name: str, path: Path, n: int = 15) -> str:
    """The profile's top functions by self time, as a markdown table under a one-line heading."""
    busy, rows = top_frames(path.read_text(), n)
    lines = [f"{name}: {busy:,} busy samples at {RATE_HZ} Hz ({path.name})", "", "| self | total | function |"]
    lines += ["|---|---|---|", *(f"| {own:.1%} | {total:.1%} | `{frame}` |" for frame, own, total in rows)]
    return "\n".join(lines)
