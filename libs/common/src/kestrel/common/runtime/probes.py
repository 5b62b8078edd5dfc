"""Dependencies every Kafka service has: the broker, probed with a metadata request the way clients bootstrap."""

from __future__ import annotations

from kestrel.common.runtime.startup import Dependency
from kestrel.common.settings import KafkaSettings, setting_name


def kafka(settings: KafkaSettings, timeout_ms: int = 5000) -> Dependency:
    async def probe() -> None:
        from aiokafka import AIOKafkaClient  # imported here so `--help` never loads a Kafka client

        from kestrel.common.kafka import aiokafka_config

        client = AIOKafkaClient(**aiokafka_config(settings), request_timeout_ms=timeout_ms)
        try:
            await client.bootstrap()
        finally:
            await client.close()

    return Dependency("kafka", settings.kafka_bootstrap, setting_name(settings, "kafka_bootstrap"), probe)
