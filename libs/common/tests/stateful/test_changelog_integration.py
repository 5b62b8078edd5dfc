"""The state changelog on a real broker: partitioned like the events topic, compacted, last write wins."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from kestrel.common.stateful import Changelog, ChangelogError, ensure_changelog

pytestmark = pytest.mark.integration


async def test_write_then_read_back_latest_state_per_key(kafka, topic_factory) -> None:
    events = await topic_factory(partitions=2)
    config = {"bootstrap_servers": kafka.bootstrap}
    changelog = Changelog(f"{events}-state-changelog", config)
    assert await ensure_changelog(config, events, changelog.topic, replication=3) == 2
    await changelog.start()
    try:
        await changelog.write([(0, b"a", b"1"), (0, b"b", b"2"), (1, b"c", b"3")])
        await changelog.write([(0, b"a", b"4"), (0, b"b", None)])
        assert changelog.known_end == await changelog.end_offsets([0, 1]) == {0: 4, 1: 1}
        assert await changelog.read([0, 1]) == {0: {"a": b"4"}, 1: {"c": b"3"}}
    finally:
        await changelog.stop()


async def test_a_changelog_partitioned_unlike_the_events_is_refused(kafka, topic_factory) -> None:
    events, other = await topic_factory(partitions=3), await topic_factory(partitions=2)
    with pytest.raises(ChangelogError, match="2 partitions but .* has 3"):
        await ensure_changelog({"bootstrap_servers": kafka.bootstrap}, events, other, replication=1)


async def changelog_config(bootstrap: str, topic: str) -> dict[str, str]:
    """The configs set on the topic itself (config source 1, DYNAMIC_TOPIC_CONFIG), not broker defaults."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        keys = {"cleanup.policy": None, "min.insync.replicas": None}
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, keys)])
        return {entry[0]: entry[1] for entry in response.resources[0][4] if entry[3] == 1}
    finally:
        await admin.close()


async def test_a_created_changelog_is_compacted_with_min_insync_capped_at_the_one_broker(kafka, topic_factory) -> None:
    events = await topic_factory(partitions=2)
    topic = f"{events}-state-changelog"
    await ensure_changelog({"bootstrap_servers": kafka.bootstrap}, events, topic, replication=3)
    assert await changelog_config(kafka.bootstrap, topic) == {"cleanup.policy": "compact", "min.insync.replicas": "1"}


@pytest.mark.parametrize("policy", ["delete", "compact,delete"])
async def test_an_existing_changelog_that_is_not_compacted_is_refused(kafka, topic_factory, policy: str) -> None:
    events = await topic_factory(partitions=2)
    deleting = await topic_factory(partitions=2, cleanup_policy=policy)
    with pytest.raises(ChangelogError, match=f"{deleting} has cleanup.policy={policy}, not compact.*--add-config"):
        await ensure_changelog({"bootstrap_servers": kafka.bootstrap}, events, deleting, replication=1)


async def test_an_existing_compacted_changelog_is_accepted(kafka, topic_factory) -> None:
    events = await topic_factory(partitions=2)
    compacted = await topic_factory(partitions=2, cleanup_policy="compact")
    assert await ensure_changelog({"bootstrap_servers": kafka.bootstrap}, events, compacted, replication=1) == 2
