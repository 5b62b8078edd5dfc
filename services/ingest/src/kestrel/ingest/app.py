"""Ingest's wiring: validated events from gRPC into Kafka."""

from __future__ import annotations

from typing import Any

from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.grpc.server import GrpcServer, ServiceBinding
from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.consumer import dead_letter_binding, producer
from kestrel.common.validation import Limits
from kestrel.ingest.publisher import EventPublisher
from kestrel.ingest.servicer import IngestServicer
from kestrel.ingest.settings import IngestSettings


def components(rt: Runtime[IngestSettings]) -> list[Any]:
    """Producer, then the gRPC server: intake starts last and stops first, so in-flight calls get their acks."""
    s = rt.settings
    assert rt.topics is not None
    events, rejects = rt.topics.bind(s.events_topic), dead_letter_binding(rt)
    out = producer(rt, events)
    dead_letter = (rejects.name, rt.topics.serde(rejects).serialize) if s.dead_letter_rejects else None
    limits = Limits(max_future_skew_ms=s.max_future_skew_s * 1000, max_event_bytes=s.max_event_bytes)
    publisher = EventPublisher(
        out, rt.topics.serde(events).serialize, events.name, limits, s.delivery_timeout_s, dead_letter
    )
    service = ServiceBinding(
        IngestServicer(publisher, s.stream_chunk, s.stream_results_max, s.admission("ingest")),
        ingest_pb2_grpc.add_IngestServiceServicer_to_server,
        ingest_pb2.DESCRIPTOR.services_by_name["IngestService"],
    )
    return [out, GrpcServer(s.grpc_server(), [service])]
