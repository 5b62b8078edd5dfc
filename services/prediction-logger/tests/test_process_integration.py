"""The logger as its console script runs it: SIGKILLed again and again under load, every prediction and label is
stored exactly once; an unreachable PostgreSQL at start is one line naming it, without the password."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kestrel.devstack.ports import free_port

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).with_name("kestrel-prediction-logger"))
KILLS = 10  # as the issue asks: ten SIGKILLs under load


def start_logger(stream: Any, dsn: str, log: Path, **extra: Any) -> subprocess.Popen[bytes]:
    values = {
        "KAFKA_BOOTSTRAP": stream.bootstrap,
        "TOPIC_PREFIX": stream.prefix,
        "POSTGRES_DSN": dsn,
        "GROUP_ID": f"g-{stream.prefix}",
        "METRICS_PORT": 0,
        "HEALTH_PORT": 0,
        "SESSION_TIMEOUT_MS": 2000,
        "MAX_BATCH": 500,
        "LOG_FORMAT": "json",
        **extra,
    }
    env = {**os.environ, **{f"KESTREL_PREDICTION_LOGGER_{k}": str(v) for k, v in values.items()}}
    with log.open("ab") as out:
        return subprocess.Popen([SCRIPT], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_sigkill_under_load_again_and_again_stores_every_record_exactly_once(
    tmp_path: Path, postgres: Any, stream: Any, send: Any
) -> None:
    predictions = stream.predictions(24_000, seed=5)
    labels = stream.labels(predictions)
    log = tmp_path / "logger.log"
    logger = start_logger(stream, postgres.dsn, log)

    async def produce() -> None:
        for start in range(0, len(predictions), 1000):
            chunk = slice(start, start + 1000)
            await send(predictions=predictions[chunk], labels=labels[chunk])
            await send(predictions=predictions[chunk][::4])  # upstream duplicates (a producer retried)
            await asyncio.sleep(0.15)

    try:
        streaming = asyncio.create_task(produce())
        mid_stream = 0
        for _ in range(KILLS):
            await _wait_for_progress(stream, postgres.dsn)
            mid_stream += not streaming.done()
            logger.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(logger.wait, 10) == -signal.SIGKILL
            logger = start_logger(stream, postgres.dsn, log)
        await streaming
        assert mid_stream >= 2, "the stream ended before the kills"
        await stream.wait_for_rows(postgres.dsn, len(predictions), len(labels), timeout_s=120)
        assert await stream.count(postgres.dsn, "labelled_predictions") == len(predictions)
        logger.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(logger.wait, 30) == 0, log.read_text()[-3000:]
    finally:
        if logger.poll() is None:
            logger.kill()
            logger.wait()


async def _wait_for_progress(stream: Any, dsn: str, timeout_s: float = 60) -> None:
    """Returns once the running process stored more rows, so each kill lands while it writes."""
    before = await stream.count(dsn, "predictions")
    deadline = time.monotonic() + timeout_s
    while await stream.count(dsn, "predictions") == before:
        assert time.monotonic() < deadline, "no progress"
        await asyncio.sleep(0.05)


async def test_an_unreachable_postgres_at_start_is_one_line_without_the_password(
    tmp_path: Path, kafka: Any, stream: Any
) -> None:
    port = free_port()
    dsn = f"postgresql://kestrel:s3cret@127.0.0.1:{port}/kestrel"
    log = tmp_path / "logger.log"
    process = start_logger(stream, dsn, log, STARTUP_DEADLINE_S=1)
    assert await asyncio.to_thread(process.wait, 60) == 1
    out = log.read_text()
    assert (
        f"postgres not reachable at 127.0.0.1:{dsn.rsplit(':', 1)[1]} (KESTREL_PREDICTION_LOGGER_POSTGRES_DSN)" in out
    )
    assert "s3cret" not in out
