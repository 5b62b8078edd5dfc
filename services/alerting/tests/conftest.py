"""Fixtures for alerting tests: isolated topics, drift reports on the topic, a webhook receiver, a rules file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.ports import free_port
from kestrel.devstack.topics import PrefixedTopics

FEATURES = ["amount", "hour", "merchant_risk", "velocity"]


def drift_report(model: str, drifted: list[str], features: list[str] = FEATURES) -> dict[str, Any]:
    now = int(time.time() * 1000)
    metric = {"ks_statistic": 0.1, "ks_pvalue": 0.5, "psi": 0.01}
    return {
        "report_id": f"r-{model}-{now}",
        "subject": "predictions",
        "feature_set_version": "card.v1",
        "model_version": "3",
        "model_name": model,
        "window_start": now - 60_000,
        "window_end": now,
        "reference_size": 1000,
        "window_size": 1000,
        "metrics": [dict(metric, name=f, drifted=f in drifted) for f in features],
        "drifted": bool(drifted),
        "created_at": now,
        "status": "drift" if drifted else "ok",
        "drifted_features": list(drifted),
    }


class Webhook:
    """An Alertmanager webhook receiver run by the test: it keeps every payload it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.payloads: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.payloads.append(await request.json())
        return web.Response(text="ok")

    def matching(self, status: str | None = None, **labels: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.payloads
            if (status is None or p["status"] == status)
            and all(p["groupLabels"].get(k) == v for k, v in labels.items())
        ]

    async def wait_for(self, count: int, timeout_s: float = 30, status: str | None = None, **labels: str) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.matching(status, **labels)) < count:
                await asyncio.sleep(0.05)


class Topics(PrefixedTopics):
    @property
    def drift_reports(self) -> str:
        return self.name("kestrel.drift-reports.v1")

    @property
    def silences(self) -> str:
        return self.name("kestrel-alerting-silences")


@pytest.fixture
def report() -> Callable[..., dict[str, Any]]:
    """`report(model, drifted_features)`: a DriftReport of now for that model over FEATURES."""
    return drift_report


@pytest.fixture
async def topics(kafka) -> Topics:
    t = Topics(kafka.bootstrap)
    await t.apply("kestrel.drift-reports.v1", "kestrel.alerts.v1", dead_letter_topic("alerting"))
    return t


@pytest.fixture
async def webhook() -> Webhook:
    hook = Webhook()
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def send_report(kafka, topics) -> Callable[..., Any]:
    """`await send_report(report)`: one DriftReport on the prefixed topic (Avro, Confluent framing)."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    await producer.start()
    serde = serde_for_topic(FileSchemaRegistry(), topics.drift_reports, "drift_report")

    async def send(report: dict[str, Any]) -> None:
        await producer.send(OutRecord(topics.drift_reports, serde.serialize(report), report["subject"].encode()))

    yield send
    await producer.stop()


@pytest.fixture
def rules_file(tmp_path: Path, webhook: Webhook) -> Callable[..., Path]:
    """`rules_file(rules, route=..., inhibit_rules=...)`: a config file whose receiver is the test's webhook."""

    def write(rules: list[dict[str, Any]], **overrides: Any) -> Path:
        route = {"receiver": "hook", "group_by": ["alertname", "model"], "group_wait": "500ms"}
        document = {
            "global": {"external_url": "http://kestrel.test"},
            "rules": rules,
            "route": {**route, **overrides.pop("route", {})},
            "receivers": [
                {"name": "hook", "kind": "webhook", "url": webhook.url, "max_attempts": 3, "backoff": "100ms"}
            ],
            **overrides,
        }
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    return write
