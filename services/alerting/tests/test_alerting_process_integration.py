"""The alerting service as its console script runs it: SIGKILLed between firing and resolved, and its partitions
moved between two replicas, every group is notified firing once and resolved once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).with_name("kestrel-alerting"))
RULE = {"alert": "FeatureDrift", "expr": "feature_drifted == true", "for": "0s"}
ROUTE = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"}
QUIET_S = 4.0
"""After the last expected notification, how long a duplicate gets to show up (several ticks and group
intervals, and a full session timeout of the group)."""


class Replica:
    """One `kestrel-alerting` process; its output goes to its own log file."""

    def __init__(self, topics: Any, rules: Path, tmp_path: Path, name: str, **extra: Any) -> None:
        values = {
            "KAFKA_BOOTSTRAP": topics.bootstrap,
            "TOPIC_PREFIX": topics.prefix,
            "RULES_FILE": rules,
            "METRICS_PORT": 0,
            "HEALTH_PORT": 0,
            "API_PORT": 0,
            "SESSION_TIMEOUT_MS": 3000,
            "TICK_INTERVAL_S": 0.2,
            "SIGNALS_INTERVAL_S": 3600,
            "DATA_DIR": tmp_path / name,
            "LOG_FORMAT": "json",
            **extra,
        }
        self.log = tmp_path / f"{name}.log"
        env = {**os.environ, **{f"KESTREL_ALERTING_{k}": str(v) for k, v in values.items()}}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([SCRIPT], env=env, stdout=out, stderr=subprocess.STDOUT)

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(self.process.wait, 10) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(self.process.wait, 60)
            assert code == 0, self.log.read_text()[-3000:]


def notified(webhook: Any) -> Counter[tuple[str, str, str]]:
    """(model, alert fingerprint, status) -> how many notifications carried it."""
    return Counter(
        (p["groupLabels"]["model"], a["fingerprint"], a["status"]) for p in webhook.payloads for a in p["alerts"]
    )


async def test_sigkill_between_firing_and_resolved_notifies_each_once(
    tmp_path: Path, topics: Any, webhook: Any, send_report: Any, rules_file: Any, report: Any
) -> None:
    rules = rules_file([RULE], route=ROUTE)
    replica = Replica(topics, rules, tmp_path, "a", COMMIT_INTERVAL_S=600)  # killed before its first commit
    try:
        await send_report(report("m1", ["amount"]))
        await webhook.wait_for(1, status="firing", model="m1", timeout_s=90)
        await replica.kill()
        # Its successor restores the tables from their changelogs, and reads the drift reports again from the
        # start: the first (replayed, changes nothing) and the clear one sent while it restores.
        replica = Replica(topics, rules, tmp_path, "a")
        await send_report(report("m1", []))
        await webhook.wait_for(1, status="resolved", model="m1", timeout_s=90)
        await asyncio.sleep(QUIET_S)
        counts = notified(webhook)
        assert sorted(counts.values()) == [1, 1], counts
        assert {status for _, _, status in counts} == {"firing", "resolved"}
    finally:
        await replica.stop()


async def test_partitions_moving_between_two_replicas_notify_each_group_once(
    tmp_path: Path, topics: Any, webhook: Any, send_report: Any, rules_file: Any, report: Any
) -> None:
    rules = rules_file([RULE], route=ROUTE)
    models = [f"m{i}" for i in range(6)]  # groups spread over the three partitions
    first = Replica(topics, rules, tmp_path, "a")
    second: Replica | None = None
    try:
        for model in models:
            await send_report(report(model, ["amount"]))
        for model in models:
            await webhook.wait_for(1, status="firing", model=model, timeout_s=90)
        second = Replica(topics, rules, tmp_path, "b")  # a rebalance hands it some of first's partitions
        await asyncio.sleep(QUIET_S)
        for model in models[:3]:
            await send_report(report(model, []))
        for model in models[:3]:
            await webhook.wait_for(1, status="resolved", model=model, timeout_s=90)
        await first.kill()  # and the second takes every partition over
        for model in models[3:]:
            await send_report(report(model, []))
        for model in models[3:]:
            await webhook.wait_for(1, status="resolved", model=model, timeout_s=90)
        await asyncio.sleep(QUIET_S)
        counts = notified(webhook)
        assert set(counts.values()) == {1}, counts
        assert sorted(status for _, _, status in counts) == ["firing"] * 6 + ["resolved"] * 6
        assert {model for model, _, _ in counts} == set(models)
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
