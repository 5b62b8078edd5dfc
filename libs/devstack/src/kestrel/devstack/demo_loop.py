"""`kestrel-stack up --demo`, the loop: a new-country wave on the simulator's clock, watched until the stream scorer
serves the retrain-trigger's promoted challenger, the run ends without one, or the time limit; then the timeline
and `kestrel-retrain timeline`'s HTML page of the loop.

The stack's services run with kestrel.devstack.loop's settings (the recipe tests/loop proves), so nothing here
drives a service: it only sends payments and reads what the services publish.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.settings import KafkaSettings
from kestrel.devstack.loop import BIN, RATE, STATIONARY_S, WINDOW_S
from kestrel.devstack.loop import traffic as loop_traffic
from kestrel.devstack.loop_story import LIFECYCLE, WATCHED, Seen, describe, outcome
from kestrel.simulator.settings import SimulatorSettings

BUDGET_S = 360.0
"""Longest wait, from drift onset, for the promoted challenger to serve (the test's 200 s, stretched for a
loaded laptop: the run took 45-51 s from onset to serving on a quiet machine)."""
AFTER_S = 2 * WINDOW_S * 0.4 / RATE + 5
"""Traffic kept up after the promotion, for the new version's first windows (10,000 cards pay 0.4 times a
second, so a window fills in WINDOW_S * 0.4 / RATE wall seconds)."""
SCHEMAS = {LIFECYCLE: "model_lifecycle", "kestrel.drift-reports.v1": "drift_report", "kestrel.alerts.v1": "alert"}
PAGE_BUCKET_MINUTES = WINDOW_S // 60
"""The page's points are as wide as the drift monitor's windows."""
PAGE_TIMEOUT_S = 120.0


async def run(endpoints: Mapping[str, str], model: str, state_dir: Path, budget_s: float = BUDGET_S) -> float | None:
    """Runs the loop's traffic and prints what happened; the seconds from drift onset to the promoted version
    serving, None when the loop did not close."""
    shared = {
        "kafka_bootstrap": endpoints["KESTREL_KAFKA_BOOTSTRAP"],
        "schema_registry_store": endpoints.get("KESTREL_SCHEMA_REGISTRY_STORE"),
    }
    seen, started = Seen(model), time.time()
    onset_ms = int((started + STATIONARY_S) * 1000)
    print(f"\nThe loop of {model}: steady payments for {STATIONARY_S} s, then a new-country wave", flush=True)
    print(f"(times from the wave's onset; waits at most {budget_s:.0f} s for the new model to serve)", flush=True)
    watching = asyncio.create_task(watch(shared, seen, onset_ms))
    sending = asyncio.create_task(traffic(shared, STATIONARY_S + budget_s + AFTER_S))
    try:
        await _until(lambda: seen.finished() or sending.done(), started + STATIONARY_S + budget_s)
        if seen.serving_ms() is not None:
            print(f"  (traffic goes on for {AFTER_S:.0f} s: the new version's first windows)", flush=True)
            await _until(sending.done, time.time() + AFTER_S)
    finally:
        for task in (sending, watching):
            task.cancel()
        await asyncio.gather(sending, watching, return_exceptions=True)
    closed, lines = outcome(seen, onset_ms)
    print("\n" + "\n".join(lines), flush=True)
    await write_page(endpoints, model, state_dir / "loop.html")
    serving = seen.serving_ms()
    return (serving - onset_ms) / 1000 if closed and serving is not None else None


async def _until(done: Any, deadline: float) -> None:
    while not done() and time.time() < deadline:
        await asyncio.sleep(1)


async def watch(shared: dict[str, Any], seen: Seen, onset_ms: int) -> None:
    """Reads the watched topics from their start and prints each record the story keeps, as it comes."""
    registry = make_registry(KafkaSettings(**shared))
    serdes = {t: serde_for_topic(registry, t, SCHEMAS.get(t, "prediction")) for t in WATCHED}
    reader = AIOKafkaConsumer(*WATCHED, bootstrap_servers=shared["kafka_bootstrap"], auto_offset_reset="earliest")
    await reader.start()
    try:
        while True:
            for tp, batch in (await reader.getmany(timeout_ms=200)).items():
                for record in batch:
                    value = await asyncio.to_thread(serdes[tp.topic].deserialize, record.value)
                    if seen.add(record.timestamp, tp.topic, value):
                        at = (record.timestamp - onset_ms) / 1000
                        print(f"  {at:+7.1f} s  {describe(tp.topic, value)}", flush=True)
    finally:
        await reader.stop()


async def traffic(shared: dict[str, Any], seconds: float) -> Any:
    """The recipe's payments (kestrel.devstack.loop.traffic): the new-country wave STATIONARY_S in."""
    return await loop_traffic(SimulatorSettings(**shared), seconds)


async def write_page(endpoints: Mapping[str, str], model: str, page: Path) -> None:
    """`kestrel-retrain timeline -o page`: its timeline from the registry's audit trail, and the page's path."""
    command = [str(BIN / "kestrel-retrain"), "timeline", "--model", model, "-o", str(page)]
    command += ["--bucket-minutes", str(PAGE_BUCKET_MINUTES)]
    proc = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, **endpoints},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), PAGE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        out = f"no answer within {PAGE_TIMEOUT_S:.0f} s".encode()
    text = out.decode(errors="replace").strip()
    print(f"\n$ kestrel-retrain timeline --model {model} -o {page}\n{text}", flush=True)
    if proc.returncode == 0:
        print(f"\nThe loop's picture (quality, drift share, serving version): {page}", flush=True)
