"""Fixtures for alerting tests: configs from YAML text, drift reports (built, and on the topic), a webhook
receiver, isolated topics, a rules file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kestrel.alerting.config import Config, parse_config
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.ports import free_port
from kestrel.devstack.topics import PrefixedTopics

HOUR = 3_600_000

BASE = """
route:
  receiver: topic
receivers:
  - {name: topic, kind: topic}
"""


def _config_from(text: str, base: str = BASE) -> Config:
    data = (yaml.safe_load(base) or {}) | (yaml.safe_load(text) or {})
    return parse_config(data)


def _report(**overrides: Any) -> dict[str, Any]:
    """A drift report of model fraud version 7 with features amount (drifted) and hour (not), and a score."""
    metrics = [
        {"name": "amount", "kind": "numeric", "psi": 0.4, "drifted": True, "p_corrected": 0.001, "effect_size": 0.4},
        {"name": "hour", "kind": "numeric", "psi": 0.01, "drifted": False, "p_corrected": 0.6, "effect_size": 0.01},
        {"name": "score", "kind": "score", "psi": 0.3, "drifted": True},
    ]
    base = {
        "report_id": "r-1", "subject": "predictions", "feature_set_version": "v3", "model_name": "fraud",
        "model_version": "7", "window_start": 0, "window_end": HOUR, "created_at": HOUR, "window_size": 20_000,
        "status": "drift", "drifted": True, "metrics": metrics, "late_predictions": 0,
        "performance": {
            "labelled": 900, "positives": 20, "pr_auc": 0.41, "reference_pr_auc": 0.62, "band_low": 0.5,
            "estimated_precision": 0.7, "precision_band_low": 0.6, "degraded": True, "basis": "measured",
        },
    }  # fmt: skip
    return base | overrides


@pytest.fixture
def config_from() -> Callable[..., Config]:
    """config_from(yaml_text, base=BASE): a Config from the base file with yaml_text's top-level keys over it."""
    return _config_from


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
    """An Alertmanager webhook receiver run by the test: it keeps every payload it is sent, and when (monotonic)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.payloads: list[dict[str, Any]] = []
        self.arrived: list[float] = []
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
        self.arrived.append(time.monotonic())
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
    """`report(**overrides)`: a drift report of model fraud version 7 (see _report); `report(model,
    drifted_features)`: a DriftReport of now for that model over FEATURES (the integration tests')."""

    def build(*args: Any, **overrides: Any) -> dict[str, Any]:
        return drift_report(*args, **overrides) if args else _report(**overrides)

    return build


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
