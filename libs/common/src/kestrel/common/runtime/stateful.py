"""The stateful loop as a runtime part: changelog topic ensured at start, consumer, dead letters, loop watch."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer

from kestrel.common.kafka import Producer, aiokafka_config
from kestrel.common.runtime.app import Runtime, Watched
from kestrel.common.runtime.bindings import TopicBinding
from kestrel.common.runtime.consumer import dead_letter_publisher
from kestrel.common.stateful import (
    Changelog,
    LoopOptions,
    StatefulLoop,
    StatefulProcessor,
    StateStore,
    changelog_topic,
    ensure_changelog,
)


class EnsuredChangelog(Changelog):
    """The state changelog; at start it creates (or checks) the compacted topic, co-partitioned with the source."""

    def __init__(self, topic: str, config: dict[str, Any], source: str, replication: int) -> None:
        super().__init__(topic, config)
        self._config, self._source, self._replication = config, source, replication

    async def start(self) -> None:
        await ensure_changelog(self._config, self._source, self.topic, self._replication)
        await super().start()


def stateful_loop(
    rt: Runtime[Any],
    source: TopicBinding,
    group_id: str,
    processor: StatefulProcessor,
    store: StateStore,
    producer: Producer,
    options: LoopOptions,
    replication: int,
    outputs: Producer | None = None,
    **consumer: Any,
) -> list[Any]:
    """Changelog, then the watched loop over `source` (intake last); `consumer` holds aiokafka group options.
    The processor's outputs go to `outputs` when given (anything with the producer's produce_batch and acks),
    else to `producer`, which always takes the dead letters."""
    s = rt.settings
    changelog = EnsuredChangelog(
        changelog_topic(s.topic_prefix, group_id), aiokafka_config(s), source.name, replication
    )

    def new_consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest", **consumer, **aiokafka_config(s)
        )

    loop = StatefulLoop(
        rt.name,
        new_consumer,
        source.name,
        processor,
        store,
        changelog,
        outputs or producer,
        dead_letter_publisher(rt, producer),
        options,
    )
    return [changelog, rt.watch(loop)]


__all__ = ["EnsuredChangelog", "Watched", "stateful_loop"]
