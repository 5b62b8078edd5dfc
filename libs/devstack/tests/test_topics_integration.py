"""apply_topics against the real broker: creates, then does nothing, then grows and reconfigures."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import uuid4

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from kestrel.common.topics import TopicCatalogue, load_catalogue
from kestrel.devstack.topics import apply_topics

pytestmark = pytest.mark.integration


def grown(catalogue: TopicCatalogue, name: str, **config: str) -> TopicCatalogue:
    def change(spec: Any) -> Any:
        if spec.name != name:
            return spec
        return dataclasses.replace(spec, partitions=spec.partitions + 2, config={**spec.config, **config})

    return TopicCatalogue(tuple(change(t) for t in catalogue))


async def partitions_of(bootstrap: str, name: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([name])
        return len(topic["partitions"])
    finally:
        await admin.close()


async def config_of(bootstrap: str, name: str, key: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, {key: None})])
        [(value, source)] = [(entry[1], entry[3]) for entry in response.resources[0][4] if entry[0] == key]
        assert source == 1, "set on the topic (DYNAMIC_TOPIC_CONFIG), not a broker default"
        return str(value)
    finally:
        await admin.close()


async def test_on_one_broker_min_insync_replicas_is_capped_with_replication_and_reported(kafka: Any) -> None:
    prefix = f"t-{uuid4().hex[:8]}."
    catalogue = load_catalogue()
    assert {(t.replication_factor, t.min_insync_replicas) for t in catalogue} == {(3, 2)}

    changes = await apply_topics(kafka.bootstrap, catalogue, prefix=prefix)
    assert changes.capped == {prefix + name: (1, 1) for name in catalogue.names}
    assert changes.capped_summary() == f"{len(catalogue)} topics at 1 replicas, min.insync.replicas 1"
    for name in catalogue.names:
        assert await config_of(kafka.bootstrap, prefix + name, "min.insync.replicas") == "1"
    assert (await apply_topics(kafka.bootstrap, catalogue, prefix=prefix)).capped == changes.capped


async def test_catalogue_apply_is_idempotent_and_grows_topics(kafka: Any) -> None:
    prefix = f"t-{uuid4().hex[:8]}."
    catalogue = load_catalogue()

    first = await apply_topics(kafka.bootstrap, catalogue, prefix=prefix)
    assert sorted(first.created) == sorted(prefix + n for n in catalogue.names)
    assert await partitions_of(kafka.bootstrap, f"{prefix}kestrel.events.v1") == 6

    again = await apply_topics(kafka.bootstrap, catalogue, prefix=prefix)
    assert not again.changed

    bigger = grown(catalogue, "kestrel.events.v1", **{"retention.ms": "3600000"})
    third = await apply_topics(kafka.bootstrap, bigger, prefix=prefix)
    assert third.created == []
    assert third.partitions == {f"{prefix}kestrel.events.v1": (6, 8)}
    assert third.configs == {f"{prefix}kestrel.events.v1": {"retention.ms": "3600000"}}
    assert await partitions_of(kafka.bootstrap, f"{prefix}kestrel.events.v1") == 8
    assert not (await apply_topics(kafka.bootstrap, bigger, prefix=prefix)).changed


async def test_topic_factory_applies_configs(kafka: Any, topic_factory: Any) -> None:
    name = await topic_factory(partitions=2, retention_ms=60000, cleanup_policy="compact")
    assert name.startswith("t-")
    assert await partitions_of(kafka.bootstrap, name) == 2
    spec = TopicCatalogue(
        (
            dataclasses.replace(
                load_catalogue().topics[0],
                name=name,
                partitions=2,
                config={"retention.ms": "60000", "cleanup.policy": "compact"},
            ),
        )
    )
    assert not (await apply_topics(kafka.bootstrap, spec)).changed
