"""Progress display: one self-overwriting line on a terminal, periodic log lines anywhere else."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import IO, Literal

import structlog

from kestrel.simulator.summary import Summary

log = structlog.get_logger()

Mode = Literal["auto", "tty", "log", "off"]


def render(summary: Summary, rate: float) -> str:
    """The progress line: what a person watching a load test wants at a glance."""
    parts = [
        f"{summary.elapsed_s:7.1f}s",
        f"sent {summary.sent:,} ({rate:,.0f}/s)",
        f"rejected {summary.rejected:,}",
        f"failed {summary.failed:,}",
        f"labels {summary.labels_sent:,}",
        f"fraud {summary.fraud_share:.2%}",
    ]
    if summary.invalid:
        parts.append(f"invalid {summary.invalid:,}")
    if summary.drift:
        parts.append(f"drift {summary.drift}")
    return " | ".join(parts)


class Progress:
    """Samples a live Summary every `interval_s` and shows the send rate over the last interval."""

    def __init__(
        self,
        snapshot: Callable[[], Summary],
        mode: Mode = "auto",
        *,
        stream: IO[str] = sys.stderr,
        interval_s: float | None = None,
    ) -> None:
        if mode == "auto":
            mode = "tty" if stream.isatty() else "log"
        self.mode = mode
        self._snapshot, self._stream = snapshot, stream
        self._interval = interval_s or (0.5 if mode == "tty" else 10.0)
        self._task: asyncio.Task[None] | None = None
        self._last = (time.monotonic(), 0)
        self._width = 0

    def start(self) -> None:
        if self.mode != "off":
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.show()
        if self.mode == "tty":
            self._stream.write("\n")
            self._stream.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.show()

    def show(self) -> None:
        summary = self._snapshot()
        now, sent = time.monotonic(), summary.sent
        rate = (sent - self._last[1]) / max(now - self._last[0], 1e-9)
        self._last = (now, sent)
        if self.mode == "tty":
            line = render(summary, rate)
            # Pad over the previous line's tail: a shorter line would leave stale characters.
            self._stream.write("\r" + line.ljust(self._width))
            self._stream.flush()
            self._width = len(line)
        else:
            log.info("sim_progress", recent_rate=round(rate, 1), **summary.as_log())
