"""Peak resident memory of every supervised service process while the drill runs (sampled from /proc)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kestrel.devstack import control

SAMPLE_S = 1.0


def rss_kib(pid: int) -> int | None:
    """VmRSS of a live process in KiB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
    return int(line.split()[1]) if line else None


async def sample_peaks(state_dir: Path, peaks: dict[str, int]) -> None:
    """Until cancelled: the highest RSS (KiB) seen per service (over its replicas and restarts) into `peaks`."""
    while True:
        for row in control.read_status(state_dir):
            if row["state"] == "running" and (kib := rss_kib(row["pid"])) is not None:
                peaks[row["service"]] = max(peaks.get(row["service"], 0), kib)
        await asyncio.sleep(SAMPLE_S)
