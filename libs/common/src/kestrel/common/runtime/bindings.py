"""A service's topics resolved from the catalogue (infra/topics.yaml): prefixed name, value schema, serde."""

from __future__ import annotations

from dataclasses import dataclass

from kestrel.common.avro import AvroSerde
from kestrel.common.registry import SchemaRegistry
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import CatalogueError, TopicCatalogue, dead_letter_topic, load_catalogue


@dataclass(frozen=True, slots=True)
class TopicBinding:
    """One catalogue topic as this deployment sees it."""

    declared: str
    """The name in the catalogue, e.g. `kestrel.events.v1`."""
    name: str
    """The name on the broker: the settings' topic_prefix + declared."""
    value_schema: str
    """The Avro schema of its values (schemas/<value_schema>.avsc)."""


class Topics:
    """The one place a service learns its topics: names and schemas come from the catalogue, never from
    strings repeated in the service. Started first among a service's components: it fetches (or registers)
    the schema ids of every serde handed out, so a missing schema fails start-up, not the first message."""

    def __init__(
        self, settings: KafkaSettings, catalogue: TopicCatalogue | None = None, registry: SchemaRegistry | None = None
    ) -> None:
        self._settings = settings
        self._catalogue = catalogue if catalogue is not None else load_catalogue()
        self._registry = registry
        self._serdes: dict[str, AvroSerde] = {}

    def bind(self, declared: str) -> TopicBinding:
        try:
            spec = self._catalogue[declared]
        except KeyError:
            raise CatalogueError(
                f"topic {declared!r} is not declared in the topic catalogue (infra/topics.yaml, KESTREL_TOPICS_FILE)"
            ) from None
        return TopicBinding(declared, self._settings.topic_prefix + declared, spec.value_schema.removesuffix(".avsc"))

    def dead_letters(self, service: str) -> TopicBinding:
        """The dead-letter topic of a consuming service, `kestrel.dlq.<service>.v1`."""
        return self.bind(dead_letter_topic(service))

    def serde(self, binding: TopicBinding) -> AvroSerde:
        """The value serde of a bound topic (one per topic, shared by whoever asks)."""
        if binding.name not in self._serdes:
            if self._registry is None:
                self._registry = make_registry(self._settings)
            self._serdes[binding.name] = serde_for_topic(self._registry, binding.name, binding.value_schema)
        return self._serdes[binding.name]

    async def start(self) -> None:
        for serde in self._serdes.values():
            await serde.aprepare()

    async def stop(self) -> None:
        return None
