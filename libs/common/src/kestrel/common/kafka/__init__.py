"""Kafka building blocks: idempotent producer, at-least-once batch consumer, dead letters."""

from kestrel.common.kafka.config import aiokafka_config, librdkafka_config
from kestrel.common.kafka.consumer import BatchConsumer, ConsumerOptions
from kestrel.common.kafka.deadletter import DeadLetterPublisher, Rejection
from kestrel.common.kafka.producer import BatchAck, Delivery, FatalProducerError, OutRecord, Producer
from kestrel.common.topics import dead_letter_topic

__all__ = [
    "BatchAck",
    "BatchConsumer",
    "ConsumerOptions",
    "DeadLetterPublisher",
    "Delivery",
    "FatalProducerError",
    "OutRecord",
    "Producer",
    "Rejection",
    "aiokafka_config",
    "dead_letter_topic",
    "librdkafka_config",
]
