"""PredictionPublisher's buffer logic (pure asyncio): bounded, backpressure, retries, nothing dropped.

The producer here is a stand-in with the Producer's produce_batch/BatchAck shape, so the buffer can be driven
into states a real broker only reaches by failing; the Kafka path itself is covered by the integration tests.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import BatchAck, Delivery, OutRecord
from kestrel.inference.publisher import PredictionPublisher


class Ack(BatchAck):
    def __init__(self, results):
        self._results = results

    async def wait(self, timeout_s=None):
        return True


class Broker:
    """Acknowledges what it is sent, unless `down`; `gate` holds deliveries until opened."""

    def __init__(self):
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.delivered: list[bytes] = []
        self.attempts = 0

    async def produce_batch(self, records):
        self.attempts += 1
        await self.gate.wait()
        if self.down:
            return Ack([UnavailableError("broker down")] * len(records))
        self.delivered += [r.value for r in records]
        return Ack([Delivery(r.topic, 0, i) for i, r in enumerate(records)])


def records(n, start=0):
    return [OutRecord("p", str(i).encode(), f"c{i}".encode()) for i in range(start, start + n)]


async def wait_until(predicate, timeout=5):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_everything_put_is_delivered_in_order():
    broker = Broker()
    pub = PredictionPublisher(broker, capacity=100, batch=7)
    await pub.start()
    for i in range(10):
        await pub.put(records(9, i * 9))
    await pub.stop()
    assert [v.decode() for v in broker.delivered] == [str(i) for i in range(90)]
    assert pub.size == 0


async def test_a_full_buffer_makes_callers_wait_then_refuses_after_block_s():
    broker = Broker()
    broker.gate.clear()  # Kafka stalls
    pub = PredictionPublisher(broker, capacity=10, batch=10, block_s=0.2)
    await pub.start()
    await pub.put(records(10))
    waiter = asyncio.create_task(pub.put(records(5, 10)))
    await asyncio.sleep(0.05)
    assert not waiter.done() and pub.size == 10  # bounded: the caller waits, nothing is dropped
    broker.gate.set()
    await waiter  # room appeared once Kafka acknowledged
    await wait_until(lambda: len(broker.delivered) == 15)
    broker.gate.clear()
    await pub.put(records(10, 15))
    with pytest.raises(UnavailableError, match="backlog full"):
        await pub.put(records(1, 25))
    broker.gate.set()
    await pub.stop()
    assert len(broker.delivered) == 25


async def test_failed_deliveries_are_retried_until_kafka_takes_them():
    broker = Broker()
    broker.down = True
    pub = PredictionPublisher(broker, capacity=100, retry_initial_s=0.01, retry_max_s=0.02)
    await pub.start()
    await pub.put(records(20))
    await wait_until(lambda: broker.attempts >= 3)
    assert broker.delivered == [] and pub.size == 20
    broker.down = False
    await wait_until(lambda: len(broker.delivered) == 20)
    await pub.stop()
    assert sorted(v.decode() for v in broker.delivered) == sorted(str(i) for i in range(20))


async def test_a_call_larger_than_the_buffer_is_let_in_alone():
    broker = Broker()
    pub = PredictionPublisher(broker, capacity=4)
    await pub.start()
    await pub.put(records(9))
    await pub.stop()
    assert len(broker.delivered) == 9


async def test_put_after_stop_is_refused():
    pub = PredictionPublisher(Broker())
    await pub.start()
    await pub.stop()
    with pytest.raises(UnavailableError, match="shutting down"):
        await pub.put(records(1))


class LateBroker(Broker):
    """Kafka slower than the publisher's delivery timeout: the first batch's acks come `late_s` after it was sent
    (what librdkafka does when its own timeout scan reports just after ours ran out), and it stores them then."""

    def __init__(self, late_s):
        super().__init__()
        self.late_s = late_s

    async def produce_batch(self, records):
        self.attempts += 1
        if self.attempts > 1:
            return await super().produce_batch(records)
        ack = LateAck(len(records))
        asyncio.get_running_loop().call_later(self.late_s, self._land, records, ack)
        return ack

    def _land(self, records, ack):
        self.delivered += [r.value for r in records]
        ack.report([Delivery(r.topic, 0, i) for i, r in enumerate(records)])


class LateAck(Ack):
    def __init__(self, size):
        super().__init__([None] * size)
        self._done = asyncio.Event()

    def report(self, results):
        self._results = results
        self._done.set()

    async def wait(self, timeout_s=None):
        try:
            await asyncio.wait_for(self._done.wait(), timeout_s)
            return True
        except TimeoutError:
            return False


def sample(name):
    return REGISTRY.get_sample_value(name) or 0.0


async def test_records_whose_ack_timed_out_are_not_sent_again_but_counted():
    broker = LateBroker(late_s=0.2)
    unacked = sample("kestrel_inference_publish_unacked_total")
    pub = PredictionPublisher(broker, delivery_timeout_s=0.05, retry_initial_s=0.01)
    await pub.start()
    await pub.put(records(5))
    await wait_until(lambda: pub.size == 0)
    await pub.put(records(3, 5))
    await pub.stop()
    await asyncio.sleep(0.3)  # the late acks have landed either way
    assert sorted(v.decode() for v in broker.delivered) == [str(i) for i in range(8)]  # each record once
    assert sample("kestrel_inference_publish_unacked_total") - unacked == 5


async def test_stop_delivers_what_is_buffered_once_kafka_is_back_within_the_grace():
    broker = Broker()
    broker.down = True
    pub = PredictionPublisher(broker, retry_initial_s=0.01, retry_max_s=0.02, grace_s=5)
    await pub.start()
    await pub.put(records(20))
    stopping = asyncio.create_task(pub.stop())
    await wait_until(lambda: broker.attempts >= 3)
    broker.down = False
    await stopping
    assert len(broker.delivered) == 20 and pub.size == 0


async def test_records_still_buffered_when_the_grace_runs_out_are_counted_as_dropped():
    broker = Broker()
    broker.down = True
    dropped = sample("kestrel_inference_publish_dropped_total")
    pub = PredictionPublisher(broker, retry_initial_s=0.01, retry_max_s=0.02, grace_s=0.1)
    await pub.start()
    await pub.put(records(20))
    await pub.stop()
    assert broker.delivered == []
    assert sample("kestrel_inference_publish_dropped_total") - dropped == 20
