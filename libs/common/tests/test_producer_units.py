"""Producer pieces that need no broker: delivery reports, batch acks, fatal error reports."""

import asyncio
import threading

import pytest
from confluent_kafka import KafkaError

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka.producer import BatchAck, Delivery, FatalProducerError, OutRecord, Producer


class Msg:
    def __init__(self, offset):
        self._offset = offset

    def topic(self):
        return "t"

    def partition(self):
        return 2

    def offset(self):
        return self._offset


class Err:
    def str(self):
        return "Broker: Not enough in-sync replicas"


async def test_batch_ack_reports_in_order_and_maps_a_missing_offset_to_minus_one():
    ack = BatchAck(asyncio.get_running_loop(), 3)
    ack.report(2, None, Msg(7))
    ack.report(0, None, Msg(None))  # a duplicate of an idempotent retry: stored, offset unknown
    assert not await ack.wait(0.01)
    ack.report(1, Err(), Msg(None))
    assert await ack.wait(1)
    assert ack.results[0] == Delivery("t", 2, -1)
    assert isinstance(ack.results[1], UnavailableError) and "in-sync" in str(ack.results[1])
    assert ack.results[2] == Delivery("t", 2, 7)


async def test_reports_from_two_threads_complete_the_batch_once_with_every_record():
    delivered = []
    ack = BatchAck(asyncio.get_running_loop(), 40_000, on_delivered=lambda: delivered.append(1))

    def report(indexes):
        for i in indexes:
            ack.report(i, None, Msg(i))

    threads = [threading.Thread(target=report, args=(range(k, 40_000, 2),)) for k in (0, 1)]  # poll and flush
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert await ack.wait(1)
    assert ack.errors() == {} and ack.unreported() == 0 and delivered == [1]  # the broker seen once a batch
    assert [d.offset for d in await ack.confirm(1)] == list(range(40_000))
    assert ack.delivery(39_999) == Delivery("t", 2, 39_999)


async def test_empty_batch_is_complete_at_once():
    assert await BatchAck(asyncio.get_running_loop(), 0).wait(0)


async def test_errors_name_each_unacknowledged_record_and_confirm_raises_one_summary():
    ack = BatchAck(asyncio.get_running_loop(), 3)
    ack.report(0, None, Msg(5))
    ack.report(2, Err(), Msg(None))
    assert ack.errors("pending") == {1: "pending", 2: "kafka delivery failed: Broker: Not enough in-sync replicas"}
    assert ack.delivery(0) == Delivery("t", 2, 5) and ack.delivery(1) is None and ack.delivery(2) is None
    with pytest.raises(UnavailableError, match=r"^2 vectors not acknowledged: no ack within 0.01s$"):
        await ack.confirm(0.01, "vectors")


async def test_confirm_returns_the_deliveries_when_every_record_was_acknowledged():
    ack = BatchAck(asyncio.get_running_loop(), 2)
    ack.report(1, None, Msg(8))
    ack.report(0, None, Msg(7))
    assert await ack.confirm(1) == [Delivery("t", 2, 7), Delivery("t", 2, 8)]
    ack.raise_for_failures()


async def test_a_fatal_error_report_fails_the_producer_for_good():
    producer = Producer({"bootstrap.servers": "127.0.0.1:1"})
    await producer.start()
    try:
        waiter = asyncio.create_task(producer.wait())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        # What librdkafka's error callback receives, from its poll thread, when idempotence is fenced.
        await asyncio.to_thread(producer._on_error, KafkaError(KafkaError._FENCED, "fenced", fatal=True))
        with pytest.raises(FatalProducerError, match="fenced"):
            await asyncio.wait_for(waiter, 5)
        with pytest.raises(FatalProducerError):
            await producer.produce_batch([OutRecord("t", b"v")])
        assert isinstance(producer.fatal, UnavailableError)  # callers are told to retry elsewhere
    finally:
        await producer.stop(timeout_s=0)


async def test_a_non_fatal_error_report_changes_nothing_and_stop_ends_wait():
    producer = Producer({"bootstrap.servers": "127.0.0.1:1"})
    await producer.start()
    await asyncio.to_thread(producer._on_error, KafkaError(KafkaError._TRANSPORT, "connection refused"))
    assert producer.fatal is None
    await producer.stop(timeout_s=0)
    await asyncio.wait_for(producer.wait(), 1)
