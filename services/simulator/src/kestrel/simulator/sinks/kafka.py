"""Straight to Kafka as any third-party producer would: Confluent-framed Avro, keyed by entity_id."""

from __future__ import annotations

import asyncio
from collections import deque

import structlog

from kestrel.common.avro import AvroSerde
from kestrel.common.kafka import BatchAck, OutRecord, Producer, librdkafka_config
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.sinks.base import Record, SinkStats

log = structlog.get_logger()


class _Acks:
    """Batch acks of one topic, counted in order as they complete: one check per batch, not per record."""

    def __init__(self, stats: SinkStats) -> None:
        self.stats = stats
        self.batches: deque[BatchAck] = deque()
        self.records = 0
        """Records in the batches not yet counted: the in-flight bound."""

    def add(self, ack: BatchAck) -> None:
        self.batches.append(ack)
        self.records += ack.size

    def reap(self) -> None:
        while self.batches and self.batches[0].done():
            self._count(self.batches.popleft())
        self.stats.in_flight = self.records

    def _count(self, ack: BatchAck) -> None:
        self.records -= ack.size
        errors = ack.errors("no delivery report")
        self.stats.accepted += ack.size - len(errors)
        if not errors:
            return
        first = not self.stats.failed
        self.stats.failed += len(errors)
        self.stats.last_error = errors[max(errors)]
        if first:  # one line, not one per record: the summary has the count
            log.warning("sim_delivery_failed", error=self.stats.last_error)

    def give_up(self) -> None:
        """At shutdown: whatever never got an answer counts as failed."""
        while self.batches:
            self._count(self.batches.popleft())
        self.stats.in_flight = 0


class KafkaSink:
    """Produces events and labels without waiting for each ack; acks are counted as they arrive.

    Waiting per batch would cap the rate at one batch per broker round trip, so the only bound is
    `max_in_flight` unacknowledged records (plus librdkafka's own queue limit).
    """

    def __init__(
        self, settings: SimulatorSettings, *, events: bool = True, labels: bool = True, producer: Producer | None = None
    ) -> None:
        registry = make_registry(settings)
        self.events_topic = settings.topic_prefix + settings.events_topic
        self.labels_topic = settings.topic_prefix + settings.labels_topic
        self._topics = [t for t, used in ((self.events_topic, events), (self.labels_topic, labels)) if used]
        self._event_serde = serde_for_topic(registry, self.events_topic, "event")
        self._label_serde = serde_for_topic(registry, self.labels_topic, "label")
        self._producer = producer or Producer(librdkafka_config(settings))
        self._max_in_flight = settings.max_in_flight
        self.events, self.labels = SinkStats(), SinkStats()
        self._acks = (_Acks(self.events), _Acks(self.labels))

    async def start(self) -> None:
        await self._event_serde.aprepare()
        await self._label_serde.aprepare()
        await self._producer.start()
        try:
            await self._producer.check_topics(self._topics)
        except BaseException:
            await self._producer.stop(timeout_s=0)  # nothing was produced; just end the poll thread
            raise

    async def send_events(self, events: list[Record]) -> None:
        await self._send(self.events_topic, self._event_serde, events, self._acks[0])

    async def send_labels(self, labels: list[Record]) -> None:
        await self._send(self.labels_topic, self._label_serde, labels, self._acks[1])

    async def _send(self, topic: str, serde: AvroSerde, records: list[Record], acks: _Acks) -> None:
        values = serde.serialize_many(records)
        acks.add(
            await self._producer.produce_batch(
                [OutRecord(topic, value, record["entity_id"].encode()) for record, value in zip(records, values)]
            )
        )
        self._reap()
        while sum(a.records for a in self._acks) > self._max_in_flight:
            await asyncio.sleep(0.005)
            self._reap()

    def _reap(self) -> None:
        for acks in self._acks:
            acks.reap()

    async def close(self) -> None:
        await self._producer.stop()
        # The poll thread hands its last acks to the loop with call_soon_threadsafe: let them land.
        for _ in range(100):
            self._reap()
            if not any(a.batches for a in self._acks):
                return
            await asyncio.sleep(0.01)
        for acks in self._acks:
            acks.give_up()
