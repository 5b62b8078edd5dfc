"""The state changelog on a real broker: partitioned like the events topic, last write wins, end offsets known."""

from __future__ import annotations

import pytest

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
