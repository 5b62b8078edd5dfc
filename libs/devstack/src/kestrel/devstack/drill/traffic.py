"""The drill's traffic: seeded simulator events through ingest at a paced rate, resent until acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog

from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.simulator.generator import Generator, GeneratorConfig

log = structlog.get_logger()

CALLS_PER_S = 10
CALL_TIMEOUT_S = 10.0
GIVE_UP_S = 120.0
"""A batch still unacknowledged this long after its first try is given up (counted, never called lost)."""
RETRY_S = 0.5


@dataclass
class Sent:
    """What ingest acknowledged: event id -> (card, event time), plus what it never did."""

    events: dict[str, tuple[str, int]] = field(default_factory=dict)
    unacked: int = 0
    resent: int = 0
    """Events sent more than once (a call failed or left them unacknowledged)."""
    rejected: int = 0
    """Events ingest refused as invalid (none expected: the drill sends valid events only)."""
    seconds: float = 0.0
    """From the first call until the last one was answered: behind `rate` when the sender could not keep up."""
    failed_calls: Counter[str] = field(default_factory=Counter)
    """Calls that failed, by gRPC status: RESOURCE_EXHAUSTED and UNAVAILABLE are ingest pushing back (or down)."""

    def newest_per_card(self) -> dict[str, tuple[int, str]]:
        """Per card, the (event time, event id) its online-store vector must end on."""
        newest: dict[str, tuple[int, str]] = {}
        for event_id, (card, at) in self.events.items():
            if (at, event_id) > newest.get(card, (-1, "")):
                newest[card] = (at, event_id)
        return newest


def generator(seed: int, run_id: str, cards: int) -> Generator:
    config = GeneratorConfig(cards=cards, seed=seed, run_id=run_id, invalid_rate=0.0, labels=False)
    return Generator(config, int(time.time() * 1000))


async def offer(ingest: str, events: Generator, rate: int, seconds: float) -> Sent:
    """`rate` events/s for `seconds` through PublishBatch, CALLS_PER_S calls a second, each call resent (whole,
    or the items ingest did not acknowledge) until acknowledged or GIVE_UP_S has passed."""
    sent = Sent()
    per_call = max(1, rate // CALLS_PER_S)
    calls = max(1, int(rate * seconds / per_call))
    async with grpc.aio.insecure_channel(ingest) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        began, pending = time.perf_counter(), set()
        for i in range(calls):
            await asyncio.sleep(max(0.0, began + i * per_call / rate - time.perf_counter()))
            batch = events.step(per_call, int(time.time() * 1000)).events
            pending.add(asyncio.create_task(_deliver(stub, batch, sent)))
            pending = {p for p in pending if not p.done()}
        await asyncio.gather(*pending)
        sent.seconds = time.perf_counter() - began
    return sent


async def _deliver(stub: ingest_pb2_grpc.IngestServiceStub, batch: list[dict[str, Any]], sent: Sent) -> None:
    deadline = time.monotonic() + GIVE_UP_S
    waiting, resent = batch, set()
    while waiting:
        if time.monotonic() > deadline:
            sent.unacked += len(waiting)
            log.warning("drill events given up", events=len(waiting))
            break
        waiting = await _call(stub, waiting, sent)
        resent |= {e["event_id"] for e in waiting}
        if waiting:
            await asyncio.sleep(RETRY_S)
    sent.resent += len(resent)


async def _call(
    stub: ingest_pb2_grpc.IngestServiceStub, batch: list[dict[str, Any]], sent: Sent
) -> list[dict[str, Any]]:
    """One PublishBatch call; returns the events to send again."""
    request = ingest_pb2.PublishBatchRequest(events=[record_to_event(e) for e in batch])
    try:
        response = await stub.PublishBatch(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        sent.failed_calls[exc.code().name] += 1
        log.debug("drill call failed; resending", code=exc.code().name, events=len(batch))
        return batch
    again = []
    for item in response.results:
        event = batch[item.index]
        if item.accepted:
            sent.events[event["event_id"]] = (event["entity_id"], event["event_time"])
        elif item.violations:
            sent.rejected += 1
        else:
            again.append(event)
    return again
