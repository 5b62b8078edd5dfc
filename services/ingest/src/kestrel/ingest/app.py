"""Wires ingest together: producer, serde, publisher, gRPC server, metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.grpc.server import GrpcServer, ServiceBinding
from kestrel.common.kafka import FatalProducerError, Producer, librdkafka_config
from kestrel.common.metrics import MetricsEndpoint
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.service import LoopWatch
from kestrel.common.topics import dead_letter_topic
from kestrel.ingest.publisher import EventPublisher
from kestrel.ingest.servicer import IngestServicer
from kestrel.ingest.settings import IngestSettings
from kestrel.common.validation import Limits


@dataclass
class IngestApp:
    """Components in start order; the gRPC server (intake) is last so it stops first."""

    settings: IngestSettings
    stop_event: asyncio.Event | None = None
    """Set when the producer fails for good (a fatal error), so the process exits and is restarted."""

    def __post_init__(self) -> None:
        s = self.settings
        self.producer = Producer(librdkafka_config(s), delivery_timeout_s=s.delivery_timeout_s)
        self.topic = s.topic_prefix + s.events_topic
        dlq_topic = s.topic_prefix + dead_letter_topic("ingest")
        registry = make_registry(s)
        self.serdes = [serde_for_topic(registry, self.topic, "event"), serde_for_topic(registry, dlq_topic, "dead_letter")]
        dead_letter = (dlq_topic, self.serdes[1].serialize) if s.dead_letter_rejects else None
        limits = Limits(max_future_skew_ms=s.max_future_skew_s * 1000, max_event_bytes=s.max_event_bytes)
        self.publisher = EventPublisher(
            self.producer, self.serdes[0].serialize, self.topic, limits,
            s.delivery_timeout_s, dead_letter,
        )
        self._dlq_topic = dlq_topic
        self.server = GrpcServer(
            s.grpc_server(),
            [ServiceBinding(IngestServicer(self.publisher, s.stream_chunk), ingest_pb2_grpc.add_IngestServiceServicer_to_server,
                            ingest_pb2.DESCRIPTOR.services_by_name["IngestService"])],
        )
        self.metrics = MetricsEndpoint(s.metrics_port)
        self.watch = LoopWatch("ingest-producer", self.stop_event)

    async def start(self) -> None:
        for serde in self.serdes:
            await serde.aprepare()
        await self.producer.start()
        await self.producer.check_topics([self.topic, self._dlq_topic])
        await self.metrics.start()
        await self.server.start()
        self.watch.start(self)

    async def stop(self) -> None:
        await self.server.stop()
        await self.metrics.stop()
        await self.producer.stop()  # the watcher then sees the producer end normally
        await self.watch.wait()

    async def wait(self) -> None:
        """What the watch awaits: the producer's life. A fatal error first takes the server out of rotation."""
        try:
            await self.producer.wait()
        except FatalProducerError:
            await self.server.health.enter_graceful_shutdown()
            raise

    @property
    def failed(self) -> bool:
        return self.watch.failed
