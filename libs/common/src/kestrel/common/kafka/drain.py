"""Read a topic from its start to the end offsets it has now (a compacted state topic read as a table)."""

from __future__ import annotations

import time
from typing import Any

from kestrel.common.errors import UnavailableError


def read_to_end(consumer: Any, topic: str, timeout_s: float) -> list[tuple[bytes | None, bytes]] | None:
    """(key, value) of every record from offset 0 to the end offsets read first, tombstones skipped, with a
    confluent-kafka Consumer of no group commits; None when the topic does not exist. UnavailableError when the
    end is not reached within timeout_s."""
    import confluent_kafka  # the Kafka client loads only when a command reads

    meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None:
        return None
    partition = confluent_kafka.TopicPartition
    ends = {p: consumer.get_watermark_offsets(partition(topic, p), timeout=timeout_s)[1] for p in meta.partitions}
    wanted = {p: end for p, end in ends.items() if end > 0}
    consumer.assign([partition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in wanted])
    out: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while wanted and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if message.error() is not None:
                continue
            if message.offset() + 1 >= wanted.get(message.partition(), 0):
                wanted.pop(message.partition(), None)
            if message.value() is not None:
                out.append((message.key(), message.value()))
    if wanted:
        raise UnavailableError(f"could not read {topic} to its end within {timeout_s:g} s")
    return out
