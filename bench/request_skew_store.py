"""The online store's side of the request-skew bench: one-card read latency and memory per card, before
(vector only) and after (vector and event log), on a real Redis holding the simulated week."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import latency_ms
from bench.request_skew import week
from kestrel.devstack.redis_server import RedisServer
from kestrel.featureset import FeatureSet
from kestrel.featureset.state import FeatureComputer
from kestrel.online_store import OnlineStore, OnlineStoreWriter, VectorWrite, redis_client

BEFORE, AFTER = "bench:before", "bench:after"


def records(card: FeatureSet, events: int, seed: int) -> list[dict[str, Any]]:
    """The stream's FeatureVector records of the week (with the event, as the features service writes them)."""
    computer, states = FeatureComputer(card), {}
    out = []
    for event in week(events, seed)[0]:
        state = states.get(event["entity_id"]) or states.setdefault(event["entity_id"], computer.new_state())
        vector = computer.update(state, event)
        if isinstance(vector, list):
            out.append(
                {
                    "entity_id": event["entity_id"],
                    "event_id": event["event_id"],
                    "event_time": event["event_time"],
                    "feature_set_version": card.version_id,
                    "features": dict(zip(card.names, vector)),
                    "categories": {source: event[source] for source in card.categorical_sources},
                    "numbers": {source: event[source] for source in card.numeric_sources},
                    "log_retention_ms": (card.max_window_s + card.allowed_lateness_s) * 1000,
                    "log_cap": card.max_events_per_entity,
                }
            )
    return out


async def fill(client: Any, vectors: list[dict[str, Any]]) -> None:
    """The same week twice: without the events (the store before the log) and with them, 2,000-record batches."""
    writer = OnlineStoreWriter(client, ttl_s=30 * 86_400)
    logged = ("categories", "numbers", "log_retention_ms", "log_cap")
    bare = [{k: v for k, v in r.items() if k not in logged} for r in vectors]
    for prefix, rows in ((BEFORE, bare), (AFTER, vectors)):
        for start in range(0, len(rows), 2000):
            await writer.write([VectorWrite.from_record(r, prefix) for r in rows[start : start + 2000]])


async def memory_per_card(client: Any, store: OnlineStore, cards: list[str]) -> float:
    """Mean bytes (MEMORY USAGE) of a card's hash and its event log (absent in the store without one)."""
    total = 0
    for card in cards:
        keys = [store.key(card), f"{store.key(card)}:ev"]
        total += sum([await client.memory_usage(key) or 0 for key in keys])
    return total / len(cards)


async def latencies(calls: int, before: OnlineStore, after: OnlineStore, asks: list[str]) -> Any:
    """One-card reads, before and after in turn so that noise on the machine hits both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(calls):
        card = asks[i % len(asks)]
        start = time.perf_counter()
        await before.get(card)
        middle = time.perf_counter()
        await after.get(card, with_log=True)
        samples[0].append(middle - start)
        samples[1].append(time.perf_counter() - middle)
    return samples


async def report(card: FeatureSet, events: int, seed: int, calls: int = 20_000) -> None:
    vectors = records(card, events, seed)
    with tempfile.TemporaryDirectory() as home:
        server = RedisServer(Path(home))
        await server.start()
        client = redis_client(server.url)
        try:
            await fill(client, vectors)
            before = OnlineStore(client, card, prefix=BEFORE)
            after = OnlineStore(client, card, prefix=AFTER)
            rng = np.random.default_rng(seed)
            asks = [vectors[i]["entity_id"] for i in rng.integers(0, len(vectors), 2000)]
            await latencies(500, before, after, asks)  # warm up the connection and the script cache
            old, new = await latencies(calls, before, after, asks)
            cards = sorted({r["entity_id"] for r in vectors})
            sample = [cards[i] for i in rng.integers(0, len(cards), 2000)]
            mem = [await memory_per_card(client, store, sample) for store in (before, after)]
        finally:
            await client.aclose()
            await server.stop()
    print(f"\nonline store, {len(cards):,} cards, {len(vectors):,} vectors; one-card read, {calls:,} calls each:")
    print("| read | p50 ms | p99 ms | bytes per card |\n|---|---|---|---|")
    for name, samples, size in (
        ("vector only (HMGET)", old, mem[0]),
        ("vector + event log (one script call)", new, mem[1]),
    ):
        p50, p99 = latency_ms(samples)
        print(f"| {name} | {p50:.3f} | {p99:.3f} | {size:,.0f} |")
