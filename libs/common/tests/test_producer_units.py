"""Producer pieces that need no broker: delivery reports and batch acks."""

import asyncio

import pytest

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka.producer import BatchAck, Delivery


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
