"""Where generated traffic goes: Kafka directly, the ingest API, a JSON-lines file, or nowhere."""

from kestrel.simulator.sinks.base import JsonlSink, NullSink, Sink, SinkStats

__all__ = ["JsonlSink", "NullSink", "Sink", "SinkStats"]
