"""`kestrel-stack up --detach`: the same `up` in a background process, so its services stay supervised."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from kestrel.devstack import record

READY = "stack and services running"
"""What a foreground `up` prints once everything (and the demo, if asked for) is done starting."""
LOG_FILE = "stack.log"


async def run_in_background(state_dir: Path, argv: list[str]) -> int:
    """Start `kestrel-stack <argv>` in its own session, echo its output until it is ready; 1 if it exits first."""
    if running := record.find_running(state_dir):
        print(
            f"kestrel-stack: stack: already running from {state_dir} (started by pid {running.owner_pid}); "
            "run `kestrel-stack down` first",
            file=sys.stderr,
        )
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    with log_path.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "kestrel.devstack.cli", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    seen = 0
    while True:
        text = log_path.read_text(errors="replace")
        print(text[seen:], end="", flush=True)
        seen = len(text)
        if READY in text:
            print(f"running in the background (pid {child.pid}, output in {log_path}); `kestrel-stack down` stops it")
            return 0
        if child.poll() is not None:
            print(f"kestrel-stack: the background stack exited with code {child.returncode}", file=sys.stderr)
            return 1
        await asyncio.sleep(0.2)
