"""Features rows: the streaming features service (its own process) next to a bare aiokafka consume loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.fixtures import fresh_catalogue, sample_events
from bench.inference import cpu_seconds
from bench.profile import recording
from bench.report import Row
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.featureset import load_feature_set
from kestrel.featureset.state import EntityState, FeatureComputer

BARE = "bare aiokafka consume loop"


async def bare_consume(bootstrap: str, topic: str, n: int) -> float:
    """Records/s of a group consumer doing nothing but getmany over the topic (no decode)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen, start = 0, None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batch and start is None:
                start = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
        return n / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


@contextlib.contextmanager
def features_processes(bootstrap: str, prefix: str, workers: int, log_path: Path) -> Iterator[list[subprocess.Popen]]:
    """`kestrel-features` workers in their own processes (as deployed), one consumer group."""
    env = {
        **os.environ,
        "KESTREL_FEATURES_KAFKA_BOOTSTRAP": bootstrap,
        "KESTREL_FEATURES_TOPIC_PREFIX": prefix,
        "KESTREL_FEATURES_GROUP_ID": f"bench-{uuid.uuid4().hex}",
        "KESTREL_FEATURES_METRICS_PORT": "0",
        "KESTREL_FEATURES_HEALTH_PORT": "0",  # several workers on one host: no fixed port to clash on
        "KESTREL_FEATURES_CHANGELOG_REPLICATION": "1",
        "KESTREL_FEATURES_LOG_FORMAT": "json",
        "KESTREL_FEATURES_LOG_LEVEL": "WARNING",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    procs = []
    with log_path.open("ab") as log:
        for _ in range(workers):
            procs.append(subprocess.Popen([sys.executable, "-m", "kestrel.features"], env=env, stdout=log, stderr=log))
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


async def vectors_rate(
    bootstrap: str,
    topic: str,
    n: int,
    procs: list[subprocess.Popen],
    timeout_s: float = 600,
    profile: Path | None = None,
) -> tuple[float, float]:
    """Vectors/s from the first vector until all n are on the topic (start-up and group join excluded), and
    the workers' CPU time per vector over the same span (the number to compare on shared cores); with
    `profile`, py-spy samples the first worker over that span."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or range(6)]
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + timeout_s
        with contextlib.ExitStack() as spy:
            while time.monotonic() < deadline:
                if any(proc.poll() is not None for proc in procs):
                    raise RuntimeError("a features worker exited; see features.log in the bench workdir")
                done = sum((await reader.end_offsets(tps)).values())
                now, cpu = time.perf_counter(), sum(cpu_seconds(proc.pid) for proc in procs)
                if done and first is None:
                    first = (now, done, cpu)
                    if profile is not None:
                        spy.enter_context(recording(procs[0].pid, profile))
                if done >= n and first is not None:
                    return (n - first[1]) / (now - first[0]), (cpu - first[2]) * 1e6 / max(n - first[1], 1)
                await asyncio.sleep(0.2)
        raise TimeoutError(f"features did not produce {n} vectors in {timeout_s:.0f}s")
    finally:
        await reader.stop()


def math_only(events: list[dict], runs: int = 3) -> tuple[float, float]:
    """Events/s of the feature computation alone (no Kafka, no Avro), for scale, and its CPU time per event:
    the best of `runs` runs over fresh state, as other jobs on shared cores only ever slow a run down."""
    fs, best = load_feature_set(), (0.0, float("inf"))
    for _ in range(runs):
        computer, states = FeatureComputer(fs), dict[str, EntityState]()
        start, cpu = time.perf_counter(), time.process_time()
        for event in events:
            state = states.get(event["entity_id"])
            if state is None:
                state = states[event["entity_id"]] = computer.new_state()
            computer.update(state, event)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        best = (max(best[0], len(events) / elapsed), min(best[1], cpu * 1e6 / len(events)))
    return best


async def run(bootstrap: str, workdir: Path, quick: bool, profile: Path | None = None) -> list[Row]:
    """The rows; with `profile`, a py-spy profile of the one-worker run."""
    n = 100_000 if quick else 300_000
    records = sample_events(n)
    features = len(load_feature_set().names)
    rate, cpu_us = math_only(records)
    rows = [
        Row(
            "features",
            "feature math only (FeatureComputer.update)",
            rate,
            notes=f"{features} features, in-process, no Kafka; {cpu_us:.1f} us CPU/event, best of 3",
            extra={"cpu_us_per_event": cpu_us},
        )
    ]
    for workers in (1, 2):
        prefix = await fresh_catalogue(bootstrap)
        topic = f"{prefix}kestrel.events.v1"
        await _produce(bootstrap, topic, records)
        if workers == 1:
            rows.insert(
                0,
                Row(
                    "features",
                    BARE,
                    await bare_consume(bootstrap, topic, n),
                    notes=f"{n:,} Avro events, 6 partitions, getmany, no decode",
                ),
            )
        with features_processes(bootstrap, prefix, workers, workdir / "features.log") as procs:
            spied = profile if workers == 1 else None
            rate, cpu_us = await vectors_rate(bootstrap, f"{prefix}kestrel.features.v1", n, procs, profile=spied)
        notes = f"per worker; decode + {features} windowed features + vector produce + changelog + commits"
        notes += f"; {cpu_us:.1f} us of worker CPU per event"
        if workers > 1:
            notes += f"; {rate:,.0f}/s in all"
        rows.append(
            Row(
                "features",
                f"features service, {workers} worker{'s' * (workers > 1)}",
                rate / workers,
                baseline=BARE,
                notes=notes,
                extra={"cpu_us_per_event": cpu_us},
            )
        )
    return rows


async def _produce(bootstrap: str, topic: str, records: list[dict]) -> None:
    serde = serde_for_topic(FileSchemaRegistry(), topic, "event")
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    try:
        for i in range(0, len(records), 10_000):
            chunk = records[i : i + 10_000]
            await producer.send_many(
                OutRecord(topic, v, r["entity_id"].encode()) for v, r in zip(serde.serialize_many(chunk), chunk)
            )
    finally:
        await producer.stop()
