"""Alerting rows: drift report on the topic -> webhook call (group_wait 0), p50/p99, and reports/s sustained."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from bench.fixtures import fresh_catalogue, stop_process
from bench.report import Row, latency_ms
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.devstack.ports import free_port

GROUP = "alerting"
FEATURES = ["amount", "hour", "merchant_risk", "velocity"]
TICK_S = 0.05
"""The service's flush check interval for the run: group_wait 0 still waits for the next check."""


class Sink:
    """The webhook receiver: when each model's first notification arrived (the models are unique per report)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived.setdefault(body["groupLabels"].get("model", ""), time.perf_counter())
        return web.Response(text="ok")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield f"http://127.0.0.1:{self.port}/hook"
        finally:
            await runner.cleanup()

    async def wait_for(self, models: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while any(m not in self.arrived for m in models):
            if time.monotonic() > deadline:
                missing = sum(m not in self.arrived for m in models)
                raise TimeoutError(f"{missing} of {len(models)} notifications missing after {timeout_s:g} s")
            await asyncio.sleep(0.002)


def drift_report(model: str) -> dict[str, Any]:
    """A report of one model version with one drifted feature: one FeatureDrift alert, one new group."""
    now = int(time.time() * 1000)
    metric = {"ks_statistic": 0.1, "ks_pvalue": 0.5, "psi": 0.01}
    return {
        "report_id": f"r-{model}",
        "subject": "predictions",
        "feature_set_version": "card.v1",
        "model_version": "1",
        "model_name": model,
        "window_start": now - 60_000,
        "window_end": now,
        "reference_size": 1000,
        "window_size": 1000,
        "metrics": [dict(metric, name=f, drifted=f == "amount") for f in FEATURES],
        "drifted": True,
        "created_at": now,
        "status": "drift",
        "drifted_features": ["amount"],
    }


def rules(webhook_url: str) -> dict[str, Any]:
    return {
        "global": {"external_url": "http://kestrel.bench"},
        "rules": [{"alert": "FeatureDrift", "expr": 'feature_drifted == true and status == "drift"'}],
        "route": {"receiver": "hook", "group_by": ["alertname", "model"], "group_wait": "0s"},
        "receivers": [{"name": "hook", "kind": "webhook", "url": webhook_url, "max_attempts": 3, "backoff": "100ms"}],
    }


@contextlib.contextmanager
def alerting_process(
    bootstrap: str, prefix: str, rules_file: Path, tmp: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`kestrel-alerting` in its own process, as deployed; yields it and its health port."""
    health = free_port()
    env = {
        **os.environ,
        "KESTREL_ALERTING_KAFKA_BOOTSTRAP": bootstrap,
        "KESTREL_ALERTING_TOPIC_PREFIX": prefix,
        "KESTREL_ALERTING_RULES_FILE": str(rules_file),
        "KESTREL_ALERTING_APP_ID": f"bench-alerting-{uuid.uuid4().hex[:8]}",
        "KESTREL_ALERTING_DATA_DIR": str(tmp / "alerting-data"),
        "KESTREL_ALERTING_TICK_INTERVAL_S": str(TICK_S),
        "KESTREL_ALERTING_SESSION_TIMEOUT_MS": "3000",  # a fast group join; the bench has one worker
        "KESTREL_ALERTING_SIGNALS_INTERVAL_S": "3600",  # no broker probes in the measured path
        "KESTREL_ALERTING_HEALTH_PORT": str(health),
        "KESTREL_ALERTING_METRICS_PORT": "0",
        "KESTREL_ALERTING_LOG_FORMAT": "json",
        "KESTREL_ALERTING_LOG_LEVEL": "INFO",
    }
    with (tmp / "alerting.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kestrel.alerting"], env=env, stdout=log, stderr=log)
    try:
        yield proc, health
    finally:
        stop_process(proc)


async def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        await asyncio.sleep(0.2)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise TimeoutError(f"kestrel-alerting not ready (exit {proc.poll()}) after {timeout_s:g} s:\n{tail}")


async def send_reports(producer: Producer, topic: str, models: list[str], gap_s: float) -> dict[str, float]:
    """Each report on the topic (acknowledged), with its send time; `gap_s` apart (0: as fast as acks come)."""
    serde = serde_for_topic(FileSchemaRegistry(), topic, "drift_report")
    sent = {}
    for model in models:
        value = serde.serialize(drift_report(model))
        sent[model] = time.perf_counter()
        await producer.send(OutRecord(topic, value, b"predictions"))
        if gap_s:
            await asyncio.sleep(gap_s)
    return sent


async def run(bootstrap: str, tmp: Path, quick: bool) -> list[Row]:
    prefix = await fresh_catalogue(bootstrap)
    topic = f"{prefix}kestrel.drift-reports.v1"
    sink = Sink()
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    try:
        async with sink.serving() as url:
            rules_file = tmp / "alerting-rules.yaml"
            rules_file.write_text(yaml.safe_dump(rules(url)))
            with alerting_process(bootstrap, prefix, rules_file, tmp) as (proc, health):
                await wait_ready(proc, health, tmp / "alerting.log")
                return await _measure(producer, topic, sink, quick)
    finally:
        await producer.stop()


async def _measure(producer: Producer, topic: str, sink: Sink, quick: bool) -> list[Row]:
    warm = [f"warm-{i}" for i in range(5)]
    await send_reports(producer, topic, warm, 0.2)
    await sink.wait_for(warm, 60)
    paced = [f"paced-{i}" for i in range(30 if quick else 200)]
    sent = await send_reports(producer, topic, paced, 0.1)
    await sink.wait_for(paced, 60)
    p50, p99 = latency_ms([sink.arrived[m] - sent[m] for m in paced])
    burst = [f"burst-{i}" for i in range(200 if quick else 2000)]
    start = time.perf_counter()
    await send_reports(producer, topic, burst, 0)
    await sink.wait_for(burst, 300)
    rate = len(burst) / (max(sink.arrived[m] for m in burst) - start)
    return [
        Row(
            GROUP,
            "drift report -> webhook (group_wait 0)",
            p50_ms=p50,
            p99_ms=p99,
            notes=f"{len(paced)} reports 100 ms apart, each a new group; flush check every {TICK_S * 1000:g} ms",
        ),
        Row(
            GROUP,
            "reports/s sustained (report -> notification)",
            throughput=rate,
            notes=f"{len(burst)} reports at once, each its own alert group and webhook call",
        ),
    ]
