"""Pipeline rows: events through ingest -> features -> feature-writer -> stream scorer -> prediction-logger, each
service its own process as deployed, on one stack: the highest offered rate held with no growing backlog, the
event-to-prediction latency at 70% of it, the CPU each process used, and the hop that falls behind first."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.report import Row, latency_ms
from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.devstack.demo import EVENTS, FEATURES, PREDICTIONS, Offsets, consumer_groups
from kestrel.devstack.services import by_name
from kestrel.devstack.stack import Stack
from kestrel.devstack.supervisor import Supervisor
from kestrel.inference.settings import InferenceSettings
from kestrel.prediction_logger.settings import PredictionLoggerSettings

GROUP = "pipeline"
SCHEMAS = {EVENTS: "event", FEATURES: "feature_vector", PREDICTIONS: "prediction"}
HOPS = ("ingest", "features", "feature-writer", "inference-scorer", "prediction-logger")
BAR = 5000
"""events/s the brief asks the whole path to sustain (docs/BRIEF: end to end)."""
PER_CALL = 100
"""Events per PublishBatch call in the throughput steps; calls are paced to the offered rate."""
LATENCY_PACE_S = 0.05
"""The latency steps send a call every 50 ms (10 events per call at 200/s, 52 at 1,050/s): closer to a stream
than the throughput steps' bursts of PER_CALL (at 200/s, 100 events every 0.5 s that queue behind each other in
every hop), without tiny batches' fixed costs saturating the machine (2 events every 10 ms kept both cores busy:
each service spends ~1.5 ms of CPU per batch whatever its size). At 200/s on this machine's two shared cores,
p50 varied 2x between identical runs; the pacing's effect was within that (docs/perf.md)."""
CARDS = 10_000
BACKLOG_S = 2.0
"""A step holds its rate when, at its end, fewer than this many seconds of events wait to be scored."""
DRAIN_S = 20.0
FLOOR_RATE = 200
"""A light load, for the latency the path adds when nothing queues."""


@dataclass
class Step:
    rate: int
    seconds: float
    per_call: int = PER_CALL
    """Events per PublishBatch call."""
    sent: int = 0
    scored: int = 0
    """Predictions written while the step ran."""
    backlog: int = 0
    """Events sent but not yet scored when the step ended."""
    drained_s: float | None = None
    """Seconds after the step until every event was scored and logged (None: not within DRAIN_S)."""
    lags: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    """Cores each service process used during the step (1.0 = one core busy), and the machine's."""

    @property
    def held(self) -> bool:
        return self.backlog <= BACKLOG_S * self.rate and self.drained_s is not None


async def run(_bootstrap: str, workdir: Path, quick: bool) -> list[Row]:
    rates, seconds = ((500, 1500, 3000), 8.0) if quick else ((1000, 2000, 3000, 4000, 5000), 20.0)
    workdir.chmod(workdir.stat().st_mode | 0o001)  # PostgreSQL runs as its own user and must reach its state dir
    stack = Stack(workdir / "pipeline", triton_models=(InferenceSettings().model_name,), ports={})
    await stack.start()
    supervisor = Supervisor(stack.state_dir, stack.env | {"KESTREL_LOG_FORMAT": "json"}, [by_name(h) for h in HOPS])
    try:
        await supervisor.start()
        await supervisor.wait_ready(240)
        pids = {r.service.name: r.popen.pid for r in supervisor.replicas if r.popen is not None}
        async with Driver(stack, supervisor.first("ingest").address("grpc_port"), pids) as driver:
            # Warm-up: joins, first Triton calls, Redis connections, and the broker's JIT (the first seconds of
            # load ran 2-3x slower on a fresh broker than a minute later).
            await driver.step(Step(500, 15.0))
            steps = []
            for rate in rates:
                steps.append(await driver.step(Step(rate, seconds)))
                if not steps[-1].held:
                    break
            best = max((s.rate for s in steps if s.held), default=rates[0])
            latency = await driver.latency(paced(int(best * 0.7), seconds))
            floor = await driver.latency(paced(FLOOR_RATE, seconds))
        return rows(steps, best, latency, floor)
    finally:
        await supervisor.stop()
        await stack.stop()


def paced(rate: int, seconds: float) -> Step:
    """A latency step: one call every LATENCY_PACE_S."""
    return Step(rate, seconds, per_call=max(1, round(rate * LATENCY_PACE_S)))


class Driver:
    """Offers events to ingest at a paced rate and reads back what each hop did with them."""

    def __init__(self, stack: Stack, ingest: str, pids: dict[str, int]) -> None:
        self.stack, self.ingest, self.pids = stack, ingest, pids
        self.groups = consumer_groups() | {PredictionLoggerSettings().group_id: PREDICTIONS}
        self.hop_of = {group: _hop(topic) for group, topic in self.groups.items()}

    async def __aenter__(self) -> Driver:
        self.offsets = await Offsets(self.stack.kafka.bootstrap).__aenter__()
        self.channel = grpc.aio.insecure_channel(self.ingest)
        self.stub = ingest_pb2_grpc.IngestServiceStub(self.channel)
        self.db = await asyncpg.connect(self.stack.postgres.dsn)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.db.close()
        await self.channel.close()
        await self.offsets.close()

    async def step(self, step: Step) -> Step:
        before = await self._ends()
        cpu = _cpu(self.pids)
        step.sent = await self._offer(step.rate, step.seconds, step.per_call)
        step.cpu = _cores(cpu, _cpu(self.pids), step.seconds)
        after = await self._ends()
        step.scored = after[PREDICTIONS] - before[PREDICTIONS]
        step.backlog = after[EVENTS] - after[PREDICTIONS]
        step.lags = {self.hop_of[g]: await self.offsets.lag(g, t) for g, t in self.groups.items()}
        step.drained_s = await self._drain(after[EVENTS])
        print(f"  pipeline {step.rate:>5}/s offered: {_describe(step)}", flush=True)
        return step

    async def latency(self, step: Step) -> Latency:
        """Seconds from each event's creation (its event_time, set as it is sent) to its prediction's record,
        and each hop's share: the records' own timestamps (the producer's clock when each was produced) on the
        events, features and predictions topics, matched by event id."""
        topics = [EVENTS, FEATURES, PREDICTIONS]
        start = await self.offsets.ends(topics)
        await self.step(step)
        end = await self.offsets.ends(topics)
        stamps = {topic: await _stamps(self.stack, topic, start, end) for topic in topics}
        latency = Latency.of(stamps[EVENTS], stamps[FEATURES], stamps[PREDICTIONS])
        latency.per_call = step.per_call
        return latency

    async def _offer(self, rate: int, seconds: float, per_call: int) -> int:
        calls = max(1, int(rate * seconds / per_call))
        interval, began, pending = per_call / rate, time.perf_counter(), set()
        for i in range(calls):
            await asyncio.sleep(max(0.0, began + i * interval - time.perf_counter()))
            request = ingest_pb2.PublishBatchRequest(events=[record_to_event(e) for e in events(per_call)])
            pending.add(asyncio.ensure_future(self.stub.PublishBatch(request, timeout=30)))
            pending = {p for p in pending if not p.done()}
        await asyncio.gather(*pending)
        return calls * per_call

    async def _ends(self) -> dict[str, int]:
        ends = await self.offsets.ends([EVENTS, PREDICTIONS])
        return {topic: sum(end for tp, end in ends.items() if tp.topic == topic) for topic in (EVENTS, PREDICTIONS)}

    async def _drain(self, events_sent: int) -> float | None:
        began = time.perf_counter()
        while time.perf_counter() - began < DRAIN_S:
            ends = await self._ends()
            logged = await self.db.fetchval("SELECT count(*) FROM predictions")
            if ends[PREDICTIONS] >= events_sent and logged >= ends[PREDICTIONS]:
                return time.perf_counter() - began
            await asyncio.sleep(0.2)
        return None


def events(n: int) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {
            "event_id": f"e-{uuid.uuid4().hex}",
            "entity_id": f"card-{random.randrange(CARDS)}",
            "event_time": now,
            "amount": round(random.lognormvariate(3.5, 1.0), 2),
            "currency": "EUR",
            "merchant_id": f"m-{random.randrange(997)}",
            "merchant_category": random.choice(("5411", "5812", "5999", "4111", "5732")),
            "country": random.choice(("DE", "FR", "NL", "US", "GB")),
            "channel": random.choice(("pos", "ecommerce", "contactless", "atm")),
            "attributes": {"device": "bench"},
        }
        for _ in range(n)
    ]


async def _stamps(
    stack: Stack, topic: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> dict[str, tuple[int, int]]:
    """Event id -> (its event_time, the record's timestamp in ms) of the topic's records between the offsets
    (predictions: the stream scorer's only)."""
    registry = FileSchemaRegistry(store=stack.state_dir / "schema-registry.json")
    serde = serde_for_topic(registry, topic, SCHEMAS[topic])
    parts = {tp: offset for tp, offset in start.items() if tp.topic == topic}
    reader = AIOKafkaConsumer(bootstrap_servers=stack.kafka.bootstrap, enable_auto_commit=False)
    await reader.start()
    stamps: dict[str, tuple[int, int]] = {}
    try:
        reader.assign(list(parts))
        for tp, offset in parts.items():
            reader.seek(tp, offset)
        while [tp for tp in parts if await reader.position(tp) < end[tp]]:
            for records in (await reader.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    value = serde.deserialize(record.value)
                    if value.get("source", "stream") == "stream":
                        stamps[value["event_id"]] = (value["event_time"], record.timestamp)
    finally:
        await reader.stop()
    return stamps


@dataclass
class Latency:
    total: list[float]
    """Seconds from each event's creation to its prediction's record."""
    hops: dict[str, list[float]]
    """Seconds each hop took: ingest (creation to the event's record), features (to the vector's record),
    scorer (to the prediction's record)."""
    per_call: int = PER_CALL
    """Events per PublishBatch call while it was measured."""

    @classmethod
    def of(
        cls, events: dict[str, tuple[int, int]], vectors: dict[str, tuple[int, int]], scored: dict[str, tuple[int, int]]
    ) -> Latency:
        both = [e for e in scored if e in events and e in vectors]
        hops = {
            "ingest": [(events[e][1] - events[e][0]) / 1000 for e in both],
            "features": [(vectors[e][1] - events[e][1]) / 1000 for e in both],
            "scorer": [(scored[e][1] - vectors[e][1]) / 1000 for e in both],
        }
        return cls([(ts - created) / 1000 for created, ts in scored.values()], hops)

    def describe(self) -> str:
        parts = [f"{hop} {1000 * float(np.median(d)):.1f}" for hop, d in self.hops.items() if d]
        return f"p50 per hop (ms): {', '.join(parts)}" if parts else "no hop matched"


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each service process, and of the whole machine ("machine")."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    busy = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    out["machine"] = (sum(busy) - busy[3] - busy[4]) / tick  # all but idle and iowait
    return out


def _cores(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / seconds, 2) for name in after}


def _hop(topic: str) -> str:
    return {EVENTS: "features", FEATURES: "writer+scorer", PREDICTIONS: "prediction-logger"}[topic]


def _describe(step: Step) -> str:
    drained = f"drained in {step.drained_s:.1f} s" if step.drained_s is not None else f"not drained in {DRAIN_S:g} s"
    cores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(step.cpu.items(), key=lambda kv: -kv[1]))
    return (
        f"{step.scored / step.seconds:,.0f}/s scored, backlog {step.backlog:,} at the end, {drained}; "
        f"committed lag {step.lags}; cores: {cores}"
    )


def bottleneck(steps: list[Step]) -> str:
    """The first step that did not hold: the hop whose consumer group lagged most, and how busy the machine was."""
    failed = next((s for s in steps if not s.held), None)
    if failed is None:
        return f"every offered rate held (up to {steps[-1].rate:,}/s)"
    hop, lag = max(failed.lags.items(), key=lambda kv: kv[1])
    busiest = max((k for k in failed.cpu if k != "machine"), key=lambda k: failed.cpu[k])
    return (
        f"at {failed.rate:,}/s: most lag at {hop} ({lag:,}); busiest process {busiest} "
        f"({failed.cpu[busiest]:.2f} cores), machine {failed.cpu['machine']:.2f} of {os.cpu_count()} cores busy"
    )


def rows(steps: list[Step], best: int, latency: Latency, floor: Latency) -> list[Row]:
    held = [s for s in steps if s.held]
    top = max(held, key=lambda s: s.rate) if held else steps[0]
    offered = ", ".join(f"{s.rate:,}{'' if s.held else ' (not held)'}" for s in steps)
    return [
        Row(
            GROUP,
            "ingest to logged prediction, highest rate held",
            float(best) if held else None,
            notes=f"offered {offered} events/s; bar {BAR:,}/s ({best / BAR:.2f}x); {bottleneck(steps)}",
            extra={f"cores_{k}": v for k, v in top.cpu.items()},
        ),
        _latency_row(f"event to prediction at 70% ({int(best * 0.7):,}/s)", latency, "bar p50 < 10 ms, p99 < 50 ms"),
        _latency_row(f"event to prediction at {FLOOR_RATE}/s", floor, "what the path adds when nothing queues"),
    ]


def _latency_row(name: str, latency: Latency, note: str) -> Row:
    delays = latency.total
    p50, p99 = latency_ms(delays) if delays else (None, None)
    extra = {"p90_ms": float(np.percentile(np.asarray(delays) * 1000, 90))} if delays else {}
    extra |= {f"p50_ms_{hop}": 1000 * float(np.median(d)) for hop, d in latency.hops.items() if d}
    notes = f"{len(delays):,} predictions, sent {latency.per_call} per call every {LATENCY_PACE_S * 1000:g} ms; "
    notes += f"{latency.describe()}; {note}"
    return Row(GROUP, name, None, p50, p99, notes=notes, extra=extra)


PARTS = {
    "ingest": "gRPC PublishBatch (500/call, 4 in flight)",
    "features": "features service, 1 worker",
    "feature-writer": "feature-writer Kafka to Redis",
    "stream scorer": "stream scorer, Kafka to Triton to Kafka",
    "prediction-logger": "prediction-logger Kafka to PostgreSQL",
}
"""Each hop's single-service row in its own suite."""


def against_parts(rows: list[Row]) -> None:
    """When the parts ran in the same run: the pipeline's held rate beside the slowest part alone, and beside
    the parts in series on one CPU budget (1 / the sum of each part's seconds per event: what the path costs
    when every hop shares the same cores, as here)."""
    held = next((r for r in rows if r.group == GROUP and r.name.startswith("ingest to logged")), None)
    by_name = {r.name: r.throughput for r in rows}
    parts = {hop: by_name.get(name) for hop, name in PARTS.items()}
    if held is None or held.throughput is None or not all(parts.values()):
        return
    rates = {hop: float(rate) for hop, rate in parts.items() if rate}
    slowest = min(rates, key=lambda hop: rates[hop])
    series = 1 / sum(1 / rate for rate in rates.values())
    alone = ", ".join(f"{hop} {rate:,.0f}" for hop, rate in rates.items())
    held.notes += (
        f"; parts alone in this run (events/s): {alone}; slowest part {slowest} "
        f"({held.throughput / rates[slowest]:.2f}x of it held); the parts in series on one CPU budget: "
        f"{series:,.0f}/s ({held.throughput / series:.2f}x)"
    )
