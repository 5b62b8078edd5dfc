"""The parts every Kafka service shares: its producer (topics checked at start) and the batch consumer with
dead letters, bounded retries and a loop watch; a service supplies only the handler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kestrel.common.kafka import BatchConsumer, DeadLetterPublisher, Producer, aiokafka_config, librdkafka_config
from kestrel.common.kafka.consumer import BatchHandler
from kestrel.common.runtime.app import Runtime, Watched
from kestrel.common.runtime.bindings import TopicBinding
from kestrel.common.runtime.lifecycle import LoopWatch


class CheckedProducer(Producer):
    """The service's producer; at start it checks that every topic it will write exists on the broker, so a
    missing topic fails start-up in one line instead of the first send."""

    def __init__(
        self,
        config: dict[str, Any],
        outputs: Sequence[TopicBinding],
        delivery_timeout_s: float,
        watch: LoopWatch | None = None,
    ) -> None:
        super().__init__(config, delivery_timeout_s=delivery_timeout_s)
        self.outputs = list(outputs)
        self._watch = watch

    async def start(self) -> None:
        await super().start()
        await self.check_topics([binding.name for binding in self.outputs])
        if self._watch is not None:
            self._watch.start(self)  # wait() raises FatalProducerError: the service then fails and exits

    async def stop(self, timeout_s: float = 10.0) -> None:
        await super().stop(timeout_s)
        if self._watch is not None:
            await self._watch.wait()


def producer(rt: Runtime[Any], *outputs: TopicBinding, dead_letters: bool = True) -> CheckedProducer:
    """A producer for `outputs` (and the service's dead-letter topic unless `dead_letters=False`)."""
    s = rt.settings
    bound = [*outputs, dead_letter_binding(rt)] if dead_letters else list(outputs)
    return CheckedProducer(
        librdkafka_config(s), bound, getattr(s, "delivery_timeout_s", 30.0), rt.loop_watch(f"{rt.name}-producer")
    )


def dead_letter_binding(rt: Runtime[Any]) -> TopicBinding:
    assert rt.topics is not None, "a Kafka service has topics"
    return rt.topics.dead_letters(rt.dead_letter_service)


def dead_letter_publisher(rt: Runtime[Any], producer: Producer) -> DeadLetterPublisher:
    assert rt.topics is not None, "a Kafka service has topics"
    binding = dead_letter_binding(rt)
    return DeadLetterPublisher(producer, rt.dead_letter_service, rt.topics.serde(binding).serialize, binding.name)


def batch_consumer(
    rt: Runtime[Any], inputs: Sequence[TopicBinding], group_id: str, handler: BatchHandler, producer: Producer
) -> Watched:
    """The shared at-least-once consumer over `inputs`, its rejects dead-lettered through `producer`, watched
    so the process exits (and is restarted) if the loop dies."""
    s = rt.settings
    consumer = BatchConsumer(
        [b.name for b in inputs],
        group_id,
        handler,
        dead_letter_publisher(rt, producer),
        aiokafka_config(s),
        s.consumer_options(),
        name=rt.name,
    )
    return rt.watch(consumer)
