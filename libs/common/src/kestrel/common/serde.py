"""Build the registry and per-topic Avro serdes a service needs from its settings."""

from __future__ import annotations

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.registry import ConfluentHttpRegistry, FileSchemaRegistry, SchemaRegistry, subject_for
from kestrel.common.settings import KafkaSettings


def make_registry(settings: KafkaSettings) -> SchemaRegistry:
    """Confluent-compatible HTTP registry when a URL is configured, else the file registry from schemas/."""
    if settings.schema_registry_url:
        return ConfluentHttpRegistry(
            settings.schema_registry_url,
            username=settings.schema_registry_username,
            password=settings.schema_registry_password,
        )
    return FileSchemaRegistry(store=settings.schema_registry_store)


def serde_for_topic(registry: SchemaRegistry, topic: str, schema_name: str) -> AvroSerde:
    """The value serde of a topic: subject `<topic>-value` (TopicNameStrategy), schema schemas/<name>.avsc."""
    return AvroSerde(registry, subject_for(topic), load_schema(schema_name))
