"""Kafka restarted during the features service's commit (issue 14, item 3): the broker goes down after the
changelog holds the batch's state and before the offsets are committed, stays down a few seconds and comes back.
Nothing may be lost, no vector may differ from the offline computation, and only identical copies may repeat."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

from kestrel.devstack.kafka import KafkaBroker

from .streams import app, catalogue, fixed_events, produce, read_vectors, wait_for, worker
from .test_features_integration import by_event, expected

pytestmark = pytest.mark.integration

DOWN_S = 5.0


async def test_a_broker_restart_inside_the_commit_loses_nothing_and_repeats_only_identical_vectors(
    tmp_path: Path,
) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    broker.die_with_parent = True
    await broker.start()
    events = fixed_events(900, seed=21)
    offline = expected(events)
    try:
        async with catalogue(broker.bootstrap) as prefix:
            await produce(broker.bootstrap, f"{prefix}kestrel.events.v1", events[:600], garbage=False)
            service = app(broker.bootstrap, prefix, f"g-{uuid4().hex}")
            await service.start()
            loop = worker(service)
            commit_offsets, restarted = loop._commit_offsets, asyncio.Event()

            async def broker_restarted_inside(offsets):  # after the changelog write, before the offsets
                if loop.processed >= 300 and not restarted.is_set():
                    restarted.set()
                    await broker.stop()
                    asyncio.get_running_loop().call_later(DOWN_S, lambda: asyncio.ensure_future(broker.start()))
                await commit_offsets(offsets)

            loop._commit_offsets = broker_restarted_inside
            wanted = {k for k, v in offline.items() if v is not None}
            topic = f"{prefix}kestrel.features.v1"
            try:
                await wait_for(restarted.is_set, timeout_s=120)
                await produce(broker.bootstrap, f"{prefix}kestrel.events.v1", events[600:], garbage=False)
                # Every vector there (a missing one fails here), and the worker still up to take the stop.
                vectors = by_event(await read_vectors(broker.bootstrap, topic, wanted, timeout_s=240))
            finally:
                await service.stop()
    finally:
        await broker.stop()
    assert set(vectors) == wanted  # nothing lost, nothing the offline computation rejects
    for event_id, copies in vectors.items():  # repeats allowed on the topic, and only identical ones
        assert all(np.allclose(c, offline[event_id], rtol=1e-9, atol=1e-9) for c in copies), event_id
