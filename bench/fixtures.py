"""Servers and sample data for benchmarks: a real broker from the devstack, synthetic valid events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kestrel.common.runtime.app import Watched
from kestrel.common.runtime.runner import ServiceApp
from kestrel.common.topics import load_catalogue
from kestrel.devstack.kafka import KafkaBroker
from kestrel.devstack.ports import free_port
from kestrel.devstack.topics import apply_topics

REPO = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def kafka_broker(state_dir: Path) -> AsyncIterator[str]:
    """A broker for this run; reuses KESTREL_KAFKA_BOOTSTRAP when set (a stack already up)."""
    if os.environ.get("KESTREL_KAFKA_BOOTSTRAP"):
        yield os.environ["KESTREL_KAFKA_BOOTSTRAP"]
        return
    broker = KafkaBroker(state_dir / "kafka")
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()


async def fresh_catalogue(bootstrap: str) -> str:
    """An isolated copy of every catalogue topic under a unique prefix; returns the prefix."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    await apply_topics(bootstrap, load_catalogue(), prefix=prefix)
    return prefix


def sample_events(n: int, seed: int = 7, cards: int = 10_000) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    now = int(time.time() * 1000)
    card = rng.integers(0, cards, n)
    amount = np.round(rng.lognormal(3.5, 1.0, n), 2)
    mcc = rng.choice(["5411", "5812", "5999", "4111", "5732"], n)
    country = rng.choice(["DE", "FR", "NL", "US", "GB"], n)
    channel = rng.choice(["pos", "ecommerce", "contactless", "atm"], n)
    return [
        {
            "event_id": f"e-{uuid.uuid4().hex}",
            "entity_id": f"card-{card[i]}",
            "event_time": now - (n - i),
            "amount": float(amount[i]),
            "currency": "EUR",
            "merchant_id": f"m-{card[i] % 997}",
            "merchant_category": str(mcc[i]),
            "country": str(country[i]),
            "channel": str(channel[i]),
            "attributes": {"device": "bench"},
        }
        for i in range(n)
    ]


@contextlib.contextmanager
def ingest_process(bootstrap: str, prefix: str, log_path: Path) -> Iterator[str]:
    """`kestrel-ingest` in its own process (as deployed), so client load does not share its loop."""
    port = free_port()
    env = {
        **os.environ,
        "KESTREL_INGEST_KAFKA_BOOTSTRAP": bootstrap,
        "KESTREL_INGEST_TOPIC_PREFIX": prefix,
        "KESTREL_INGEST_GRPC_PORT": str(port),
        "KESTREL_INGEST_METRICS_PORT": "0",
        "KESTREL_INGEST_LOG_FORMAT": "json",
        "KESTREL_INGEST_LOG_LEVEL": "WARNING",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kestrel.ingest"], env=env, stdout=log, stderr=log)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)


async def drain_rate(app: ServiceApp, total: int) -> float:
    """Records/s of a consumer service draining a pre-filled topic of `total` records, timed from its first
    processed batch (so start-up and group join are left out); the service is stopped afterwards."""
    await app.start()
    consumer = app.part(Watched).loop
    try:
        while consumer.processed == 0:
            await asyncio.sleep(0.002)
        first, start = consumer.processed, time.perf_counter()
        while consumer.processed < total:
            await asyncio.sleep(0.002)
        return (total - first) / (time.perf_counter() - start)
    finally:
        await app.stop()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, 30 s to stop, then SIGKILL: a service process the bench started."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
