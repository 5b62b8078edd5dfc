"""The features service on a real broker: parity with the offline recomputation, dead letters, retries, scale-out."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any
from uuid import uuid4

import numpy as np
import pytest
from prometheus_client import REGISTRY

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.registry import FileSchemaRegistry
from kestrel.featureset import load_feature_set
from kestrel.featureset.offline import compute, duplicates

from .conftest import EVENTS, VECTORS
from .streams import app, catalogue, fixed_events, produce, read, read_vectors, wait_for, with_retries, worker

pytestmark = pytest.mark.integration

LETTERS = AvroSerde(FileSchemaRegistry(), "dlq-value", load_schema("dead_letter"))


def expected(events: list[dict[str, Any]]) -> dict[str, list[float] | None]:
    """Offline result per event id: its vector, or None when the stream must reject it."""
    return {e["event_id"]: v for e, v in zip(events, compute(events, load_feature_set()))}


def by_event(records: list[Any]) -> dict[str, list[list[float]]]:
    names = load_feature_set().names
    out: dict[str, list[list[float]]] = {}
    for record in records:
        vector = VECTORS.deserialize(record.value)
        assert vector["features"] == {} and len(vector["feature_values"]) == len(names)  # packed
        assert vector["feature_set_version"] == "card.v1"
        out.setdefault(vector["event_id"], []).append(vector["feature_values"])
    return out


def assert_matches(stream: dict[str, list[list[float]]], offline: dict[str, list[float] | None]) -> None:
    assert set(stream) == {k for k, v in offline.items() if v is not None}
    for event_id, vectors in stream.items():
        assert len(vectors) == 1, f"{event_id} emitted {len(vectors)} times"
        assert np.allclose(vectors[0], offline[event_id], rtol=1e-9, atol=1e-9), event_id


async def test_stream_matches_offline_and_dead_letters_bad_and_late_records(kafka) -> None:
    events = fixed_events(1200)
    offline = expected(events)
    rejected = {k for k, v in offline.items() if v is None}
    async with catalogue(kafka.bootstrap) as prefix:
        garbage = await produce(kafka.bootstrap, f"{prefix}kestrel.events.v1", events)
        service = app(kafka.bootstrap, prefix, f"g-{uuid4().hex}")
        await service.start()
        try:
            vectors = await read(kafka.bootstrap, f"{prefix}kestrel.features.v1", len(offline) - len(rejected))
            letters = await read(kafka.bootstrap, f"{prefix}kestrel.dlq.features.v1", len(rejected) + garbage)
        finally:
            await service.stop()
    assert_matches(by_event(vectors), offline)
    decoded = [LETTERS.deserialize(r.value) for r in letters]
    kinds = {d["error_type"] for d in decoded}
    assert kinds == {"SerializationError", "LateEvent", "InvalidEvent"}
    late = [d for d in decoded if d["error_type"] == "LateEvent"]
    assert all("behind the entity's newest event time" in d["reason"] for d in late)
    invalid = [d for d in decoded if d["error_type"] == "InvalidEvent"]
    ids = {EVENTS.deserialize(d["value"])["event_id"] for d in late + invalid}
    assert ids == rejected and len(decoded) == len(rejected) + garbage
    assert sum(d["error_type"] == "SerializationError" for d in decoded) == garbage
    assert all(d["service"] == "features" and d["original_topic"].endswith("kestrel.events.v1") for d in decoded)


async def test_two_workers_split_partitions_and_a_survivor_takes_over_from_the_changelog(kafka) -> None:
    first, second = fixed_events(600), fixed_events(600, seed=4, start=600)
    third = fixed_events(300, seed=5, start=1200)
    events = first + second + third
    group = f"g-{uuid4().hex}"
    async with catalogue(kafka.bootstrap) as prefix:
        topic = f"{prefix}kestrel.events.v1"
        a, b = app(kafka.bootstrap, prefix, group), app(kafka.bootstrap, prefix, group)
        await a.start()
        await b.start()
        await wait_for(
            lambda: (
                worker(a).store.partitions
                and worker(b).store.partitions
                and len(worker(a).store.partitions | worker(b).store.partitions) == 6
            )
        )
        assert not worker(a).store.partitions & worker(b).store.partitions
        await produce(kafka.bootstrap, topic, first, garbage=False)
        await wait_for(lambda: worker(a).processed + worker(b).processed == len(first))
        assert worker(a).processed and worker(b).processed
        await a.stop()  # b restores a's partitions from the changelog
        b_first = worker(b).processed
        await produce(kafka.bootstrap, topic, second, garbage=False)
        await wait_for(lambda: worker(b).processed == b_first + len(second))
        await b.stop()
        c = app(kafka.bootstrap, prefix, group)  # a restart: everything comes back from the changelog
        await c.start()
        await produce(kafka.bootstrap, topic, third, garbage=False)
        await wait_for(lambda: worker(c).processed == len(third))
        await c.stop()
        offline = expected(events)
        vectors = by_event(
            await read(kafka.bootstrap, f"{prefix}kestrel.features.v1", sum(v is not None for v in offline.values()))
        )
    assert_matches(vectors, offline)


async def test_retried_events_give_one_vector_each_even_across_a_restart(kafka) -> None:
    events = fixed_events(600, seed=9)
    first = with_retries(events[:400], seed=10)
    second = events[370:400] + with_retries(events[400:], seed=11)  # retries of events applied before the restart
    resent = duplicates(first + second, load_feature_set())
    counted = duplicates_counted()
    group = f"g-{uuid4().hex}"
    async with catalogue(kafka.bootstrap) as prefix:
        for batch in (first, second):
            await produce(kafka.bootstrap, f"{prefix}kestrel.events.v1", batch, garbage=False)
            await process(app(kafka.bootstrap, prefix, group), len(batch))  # the second restores the first's state
        offline = expected(events)  # the offline computation without the re-sent copies
        vectors = by_event(
            await read(kafka.bootstrap, f"{prefix}kestrel.features.v1", sum(v is not None for v in offline.values()))
        )
    assert resent.sum() > 150
    assert_matches(vectors, offline)
    assert duplicates_counted() == counted + resent.sum()


async def process(service: Any, records: int) -> None:
    """Run a worker until it has processed that many records, then stop it (a commit point)."""
    await service.start()
    await wait_for(lambda: worker(service).processed == records)
    await service.stop()


def duplicates_counted() -> float:
    return REGISTRY.get_sample_value("kestrel_features_events_total", {"outcome": "duplicate"}) or 0.0


async def test_one_worker_gives_the_same_vectors_as_two(kafka) -> None:
    events = fixed_events(800, seed=6)
    accepted = {k for k, v in expected(events).items() if v is not None}
    results = []
    for workers in (1, 2):
        async with catalogue(kafka.bootstrap) as prefix:
            group = f"g-{uuid4().hex}"
            await produce(kafka.bootstrap, f"{prefix}kestrel.events.v1", events, garbage=False)
            apps = [app(kafka.bootstrap, prefix, group) for _ in range(workers)]
            for service in apps:  # the second joins while the first already processes: a rebalance mid-stream
                await service.start()
            vectors = await read_vectors(kafka.bootstrap, f"{prefix}kestrel.features.v1", accepted)
            for service in apps:
                await service.stop()
            results.append(by_event(vectors))
    one, two = (assert_unique_values(r) for r in results)
    assert one.keys() == two.keys() == accepted
    assert all(np.array_equal(one[k], two[k]) for k in one)


def assert_unique_values(vectors: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    """At-least-once: a rebalance may repeat a vector, but never with other values."""
    for event_id, copies in vectors.items():
        assert all(np.array_equal(copies[0], c) for c in copies), event_id
    return {event_id: copies[0] for event_id, copies in vectors.items()}


async def test_entry_point_runs_as_deployed_and_stops_cleanly_on_sigterm(kafka) -> None:
    events = fixed_events(200, seed=8)
    accepted = {k for k, v in expected(events).items() if v is not None}
    async with catalogue(kafka.bootstrap) as prefix:
        await produce(kafka.bootstrap, f"{prefix}kestrel.events.v1", events, garbage=False)
        env = {
            **os.environ,
            "KESTREL_FEATURES_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "KESTREL_FEATURES_TOPIC_PREFIX": prefix,
            "KESTREL_FEATURES_GROUP_ID": f"g-{uuid4().hex}",
            "KESTREL_FEATURES_METRICS_PORT": "0",
            "KESTREL_FEATURES_HEALTH_PORT": "0",  # no fixed port: another features process on the host may hold 8080
            "KESTREL_FEATURES_CHANGELOG_REPLICATION": "1",
            "KESTREL_FEATURES_LOG_FORMAT": "json",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kestrel.features",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            vectors = await read_vectors(kafka.bootstrap, f"{prefix}kestrel.features.v1", accepted)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert b"service_stopping" in stderr
    assert_matches(by_event(vectors), expected(events))
