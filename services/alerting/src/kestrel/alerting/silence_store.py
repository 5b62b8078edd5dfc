"""Silences kept on their compacted topic: write a version, read every silence's latest version back."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from kestrel.alerting.silences import SILENCES_TOPIC, Record, latest
from kestrel.common.errors import UnavailableError
from kestrel.common.kafka.config import librdkafka_config
from kestrel.common.kafka.drain import read_to_end
from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings

_QUIET = {"log_level": 0}
"""librdkafka's own connection-refused lines would bury the one line a CLI user needs to read."""


def _unreachable(settings: KafkaSettings) -> str:
    return f"kafka not reachable at {settings.kafka_bootstrap} (KESTREL_KAFKA_BOOTSTRAP)"


class SilenceStore(Protocol):
    """Where the CLI and the HTTP API keep silences; the app's silences Table is another reader of the topic."""

    async def put(self, record: Record) -> None: ...

    async def all(self) -> dict[str, Record]: ...


class TopicSilenceStore:
    """kestrel.alerting-silences.v1, key = silence id. `all()` reads the topic from the start to its end offsets
    at the time of the call, so a silence the same caller just put is always seen."""

    def __init__(self, settings: KafkaSettings, topics: Topics | None = None, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._topics = topics if topics is not None else Topics(settings)
        self._binding = self._topics.bind(SILENCES_TOPIC)
        self._serde = self._topics.serde(self._binding)
        self._timeout_s = timeout_s

    async def put(self, record: Record) -> None:
        from kestrel.common.kafka.producer import OutRecord, Producer  # Kafka clients load only when used

        value = await asyncio.to_thread(self._serde.serialize, record)
        producer = Producer(librdkafka_config(self._settings, **_QUIET), delivery_timeout_s=self._timeout_s)
        await producer.start()
        try:
            await producer.send(OutRecord(self._binding.name, value, record["silence_id"].encode()))
        except UnavailableError as exc:
            raise UnavailableError(f"{_unreachable(self._settings)}: {exc}") from exc
        finally:
            await producer.stop(timeout_s=1.0)

    async def all(self) -> dict[str, Record]:
        payloads = await asyncio.to_thread(self._read_all)
        return latest(self._serde.deserialize(p) for p in payloads)

    def _read_all(self) -> list[bytes]:
        import confluent_kafka

        config = librdkafka_config(
            self._settings, **_QUIET, **{"group.id": "kestrel-alerts", "enable.auto.commit": False}
        )
        config.pop("linger.ms")  # a producer property: librdkafka warns about it on a consumer
        consumer = confluent_kafka.Consumer(config)
        try:
            return _drain(consumer, self._binding.name, self._timeout_s)
        except confluent_kafka.KafkaException as exc:
            raise UnavailableError(f"{_unreachable(self._settings)}: {exc.args[0].str()}") from exc
        finally:
            consumer.close()


def _drain(consumer: Any, topic: str, timeout_s: float) -> list[bytes]:
    records = read_to_end(consumer, topic, timeout_s)
    if records is None:
        raise UnavailableError(f"topic {topic} missing (run `kestrel-stack topics apply`)")
    return [value for _, value in records]
