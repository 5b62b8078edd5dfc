"""Runs one drill: traffic and seeded faults on the local stack, then the lag drained and everything read back."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiokafka.errors import KafkaError

from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.settings import KafkaSettings, load_settings
from kestrel.common.topics import dead_letter_topic, load_catalogue
from kestrel.devstack import control, record
from kestrel.devstack.demo import EVENTS, FEATURES, PREDICTIONS, Offsets, consumer_groups
from kestrel.devstack.drill import readback
from kestrel.devstack.drill.counts import ReadBack, tallies
from kestrel.devstack.drill.memory import sample_peaks
from kestrel.devstack.drill.options import Options
from kestrel.devstack.drill.outage import outage
from kestrel.devstack.drill.reconcile import dead_letters
from kestrel.devstack.drill.report import Recovery, Report
from kestrel.devstack.drill.schedule import Fault, parse, plan
from kestrel.devstack.drill.traffic import Sent, generator, offer
from kestrel.devstack.services import HOST, SERVICES, runnable
from kestrel.devstack.stack import ADDRESSES, Stack
from kestrel.devstack.supervisor import Supervisor
from kestrel.feature_writer.settings import FeatureWriterSettings
from kestrel.inference.settings import InferenceSettings
from kestrel.online_store.layout import DEFAULT_PREFIX
from kestrel.prediction_logger.settings import PredictionLoggerSettings

log = structlog.get_logger()

ALERTS, LIFECYCLE = "kestrel.alerts.v1", "kestrel.model-lifecycle.v1"
DEAD_LETTERS = tuple(dead_letter_topic(s.name) for s in SERVICES if s.name != "inference-scorer")
SERVICE_NAMES = tuple(s.name for s in SERVICES)
TOPICS = (EVENTS, FEATURES, PREDICTIONS, ALERTS, LIFECYCLE, *DEAD_LETTERS)
SERVICE_ENV = {"KESTREL_SESSION_TIMEOUT_MS": "6000"}
"""A killed consumer's partitions move on after 6 s instead of 10."""
WARM_UP_S = 5.0
"""Traffic runs this long before the first fault, and the last fault leaves a fifth of the run after it."""


@dataclass(frozen=True)
class Target:
    state_dir: Path
    endpoints: dict[str, str]
    ingest: str
    services: tuple[str, ...]
    stack: Stack | None = None
    """The drill's own stack, whose servers it may stop (stop faults); None on a running `kestrel-stack up`."""


async def run(options: Options, state_dir: Path) -> Report:
    """The drill on the stack running in `state_dir`, or on a stack of its own started there (stopped after)."""
    parse(options.faults, SERVICE_NAMES)  # a typo fails before any server starts
    async with target(state_dir, options.services) as where:
        faults = plan(parse(options.faults, where.services), options.seed, WARM_UP_S, options.duration_s * 0.8)
        if where.stack is None and any(f.kind == "stop" for f in faults):
            raise ValueError("stop faults need the drill's own stack: run it where no `kestrel-stack up` runs")
        for fault in faults:
            log.info("drill fault planned", fault=str(fault))
        async with Offsets(where.endpoints["KESTREL_KAFKA_BOOTSTRAP"]) as offsets:
            start = await offsets.ends(TOPICS)
            run_id = f"drill{options.seed}-{secrets.token_hex(3)}"
            events = generator(options.seed, run_id, options.cards)
            peaks: dict[str, int] = {}
            sampler = asyncio.create_task(sample_peaks(where.state_dir, peaks))
            traffic = asyncio.create_task(offer(where.ingest, events, options.rate, options.duration_s))
            try:
                recoveries = await inject(where, faults, offsets)
                sent = await traffic
                drained = await drain(offsets, options.drain_s)
            finally:
                sampler.cancel()
                traffic.cancel()  # when a fault could not be injected
            end = await offsets.ends(TOPICS)
        got, dead = await read_back(where.endpoints, start, end, sent)
    report = Report(options.seed, options.rate, options.duration_s, len(sent.events), sent.unacked, sent.resent)
    report.tallies = tallies(sent.events, sent.newest_per_card(), got)
    report.dead_letters, report.recoveries, report.drained_s = dead, recoveries, drained
    report.failed_calls, report.peak_rss_kib, report.sent_s = dict(sent.failed_calls), peaks, sent.seconds
    return report


@asynccontextmanager
async def target(state_dir: Path, services: Sequence[str]) -> AsyncIterator[Target]:
    if running := record.find_running(state_dir):
        rows = control.read_status(state_dir)
        names = tuple(dict.fromkeys(r["service"] for r in rows))
        ingest = running.env.get("KESTREL_INGEST_ADDR") or _address(rows, "ingest")
        yield Target(state_dir, running.env, ingest, names)
        return
    if unknown := set(services) - {s.name for s in SERVICES}:
        raise ValueError(f"--services: unknown {', '.join(sorted(unknown))}; known: {', '.join(SERVICE_NAMES)}")
    stack = Stack(state_dir, triton_models=(load_settings(InferenceSettings).model_name,))
    await stack.start()
    chosen = [s for s in runnable(stack.addresses, ADDRESSES) if not services or s.name in services]
    supervisor = Supervisor(stack.state_dir, stack.env | SERVICE_ENV, chosen)
    supervise = None
    try:
        await supervisor.start()
        supervise = asyncio.create_task(supervisor.supervise())
        await supervisor.wait_ready(300)
        ingest = supervisor.first("ingest").address("grpc_port")
        yield Target(stack.state_dir, stack.endpoints, ingest, tuple(s.name for s in chosen), stack)
    finally:
        if supervise is not None:
            supervise.cancel()
        await supervisor.stop()
        await stack.stop()


def _address(rows: list[dict[str, Any]], service: str) -> str:
    return f"{HOST}:{next(r for r in rows if r['service'] == service)['ready_port']}"


async def inject(where: Target, faults: Sequence[Fault], offsets: Offsets) -> list[Recovery]:
    """Each fault at its time (or as soon as the previous one has recovered); returns how long each took."""
    began, out = time.monotonic(), []
    for fault in faults:
        await asyncio.sleep(max(0.0, began + fault.at_s - time.monotonic()))
        if fault.kind == "kill":
            seconds = await control.crash(where.state_dir, fault.target)
        else:
            assert where.stack is not None
            seconds = await outage(where.stack, fault.target, fault.down_s, _progress(offsets, fault.target))
        log.info("drill fault", fault=str(fault), recovered_s=seconds)
        out.append(Recovery(fault, seconds))
    return out


def _progress(offsets: Offsets, dependency: str) -> Callable[[], Awaitable[int | None]]:
    """How far the consumer group that needs `dependency` has committed (None while Kafka does not answer): an
    outage has ended for the pipeline once this moves again."""
    group, topic = {
        "kafka": (PredictionLoggerSettings().group_id, PREDICTIONS),
        "postgres": (PredictionLoggerSettings().group_id, PREDICTIONS),
        "triton": (InferenceSettings().group_id, FEATURES),
        "redis": (FeatureWriterSettings().group_id, FEATURES),
    }[dependency]

    async def committed() -> int | None:
        try:
            return sum((await offsets.ends([topic])).values()) - await offsets.lag(group, topic)
        except KafkaError:
            return None

    return committed


async def drain(offsets: Offsets, timeout: float) -> float | None:
    """Seconds until every hot consumer group has committed everything (twice in a row), None after `timeout`."""
    groups = consumer_groups() | {PredictionLoggerSettings().group_id: PREDICTIONS}
    began, calm = time.monotonic(), 0
    while time.monotonic() - began < timeout:
        lags = {group: await offsets.lag(group, topic) for group, topic in groups.items()}
        calm = calm + 1 if not any(lags.values()) else 0
        if calm >= 2:
            return time.monotonic() - began
        log.debug("drill draining", **lags)
        await asyncio.sleep(1.0)
    return None


async def read_back(
    endpoints: dict[str, str], start: readback.Offsets, end: readback.Offsets, sent: Sent
) -> tuple[ReadBack, dict[str, int]]:
    bootstrap = endpoints["KESTREL_KAFKA_BOOTSTRAP"]
    registry = make_registry(
        KafkaSettings(kafka_bootstrap=bootstrap, schema_registry_store=endpoints["KESTREL_SCHEMA_REGISTRY_STORE"])
    )
    catalogue = load_catalogue()

    async def topic(name: str) -> list[dict[str, object]]:
        serde = serde_for_topic(registry, name, catalogue[name].value_schema)
        part = {tp: o for tp, o in start.items() if tp.topic == name}
        return await readback.read_topic(bootstrap, serde, part, end)

    got = ReadBack(await topic(EVENTS), await topic(FEATURES), await topic(PREDICTIONS))
    got.alerts, got.lifecycle = await topic(ALERTS), await topic(LIFECYCLE)
    got.logged = await readback.logged_predictions(endpoints["KESTREL_POSTGRES_DSN"], list(sent.events))
    cards = {card for card, _ in sent.events.values()}
    state = await readback.online_state(endpoints["KESTREL_REDIS_URL"], DEFAULT_PREFIX, cards)
    got.log_members, got.vectors, got.complete_from = state
    letters = [r for name in DEAD_LETTERS for r in await topic(name)]
    return got, dead_letters(letters)
