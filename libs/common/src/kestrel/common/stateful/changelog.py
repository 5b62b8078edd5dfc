"""The state changelog: a compacted topic, partitioned like the source topic, that state is restored from.

Partition p of the changelog holds the state of the keys whose events are in partition p of the
source topic, so whoever owns source partition p restores exactly changelog partition p.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code
from prometheus_client import Counter

from kestrel.common.errors import KestrelError, NotFoundError
from kestrel.common.stateful.store import Change
from kestrel.common.topics import MIN_ISR, min_insync_for

log = structlog.get_logger()

RESTORED = Counter("kestrel_state_restored_records_total", "Changelog records read while restoring state", ["topic"])
WRITTEN = Counter("kestrel_state_changelog_records_total", "State records written to the changelog", ["topic"])


class ChangelogError(KestrelError):
    """The changelog topic cannot be used (wrong partitioning or cleanup policy, creation refused)."""


def changelog_topic(prefix: str, group_id: str) -> str:
    """`<prefix><group>-state-changelog`: one per consumer group, as the state belongs to its offsets."""
    return f"{prefix}{group_id}-state-changelog"


async def partition_count(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    """Partitions of a topic, or None when it does not exist."""
    described = await admin.describe_topics([topic])
    info = described[0] if described else None
    if not info or info["error_code"] != 0:
        return None
    return len(info["partitions"])


async def ensure_changelog(
    client_config: dict[str, Any], source: str, topic: str, replication: int, min_insync_replicas: int | None = None
) -> int:
    """Create the changelog with the source topic's partition count (or check it and its cleanup policy);
    returns that count.

    The one topic not in infra/topics.yaml: its name follows the consumer group, like Kafka Streams'
    internal topics, and its partitioning must follow the source topic, whatever that is on this cluster.
    min.insync.replicas defaults to one less than `replication` (the catalogue's rule: one broker may be down),
    and is capped with replication on a smaller cluster as the catalogue's topics are (min_insync_for).
    """
    admin = AIOKafkaAdminClient(**client_config)
    await admin.start()
    try:
        partitions = await partition_count(admin, source)
        if partitions is None:
            raise NotFoundError(f"topic {source} missing (run `kestrel-stack topics apply`)")
        existing = await partition_count(admin, topic)
        if existing is None:
            min_isr = min(min_insync_replicas or replication - 1, replication)
            await _create(admin, topic, partitions, replication, max(1, min_isr))
            return partitions
        if existing != partitions:
            raise ChangelogError(
                f"{topic} has {existing} partitions but {source} has {partitions}: state would "
                f"be restored for the wrong entities; delete it (state is rebuilt from events)"
            )
        _check_policy(topic, await _cleanup_policy(admin, topic))
        return partitions
    finally:
        await admin.close()


def _check_policy(topic: str, policy: str) -> None:
    """Only `compact` keeps every entity's latest state for ever; `delete` (or `compact,delete`) drops the state
    of entities quiet for longer than retention.ms, and a restore would silently start them from zero."""
    if policy != "compact":
        raise ChangelogError(
            f"{topic} has cleanup.policy={policy}, not compact: state older than its retention would be lost "
            f"on restore. Set it: kafka-configs.sh --alter --entity-type topics --entity-name {topic} "
            f"--add-config cleanup.policy=compact (or delete the topic: state is rebuilt from events)"
        )


async def _cleanup_policy(admin: AIOKafkaAdminClient, topic: str) -> str:
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})]
    )
    code, message, *_, entries = response.resources[0]
    if code:
        raise ChangelogError(f"cannot describe the configs of {topic}: {for_code(code).__name__} {message or ''}")
    return str({entry[0]: entry[1] for entry in entries}["cleanup.policy"])


async def _create(admin: AIOKafkaAdminClient, topic: str, partitions: int, replication: int, min_isr: int) -> None:
    brokers = len((await admin.describe_cluster())["brokers"])
    replicas = min(replication, brokers)
    # Small segments: compaction only touches closed ones, and a takeover reads what is not compacted yet.
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": str(64 << 20),
        MIN_ISR: str(min_insync_for(replicas, replication, min_isr)),
    }
    response = await admin.create_topics([NewTopic(topic, partitions, replicas, topic_configs=config)])
    for name, code, *rest in response.topic_errors:
        error = for_code(code) if code else None
        if error is not None and error is not TopicAlreadyExistsError:
            raise ChangelogError(f"cannot create {name}: {error.__name__} {rest[0] if rest else ''}")
    log.info("changelog_created", topic=topic, partitions=partitions, replicas=replicas, min_isr=config[MIN_ISR])


class Changelog:
    """Writes state changes partition by partition and reads partitions back; remembers the end offsets."""

    def __init__(self, topic: str, client_config: dict[str, Any]) -> None:
        self.topic = topic
        self._config = client_config
        self._producer: AIOKafkaProducer | None = None
        self.known_end: dict[int, int] = {}
        """End offset per partition as of our last restore or write: if the topic still ends there,
        nobody else wrote in between and the state we hold is current."""

    async def start(self) -> None:
        # Batches well under the broker's 1 MiB message limit; a single large state still fits alone.
        self._producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, compression_type="lz4", max_batch_size=512 << 10, **self._config
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def write(self, changes: Sequence[Change]) -> None:
        """Write and wait for the broker's acks; one record batch per partition at a time."""
        by_partition: dict[int, list[Change]] = defaultdict(list)
        for change in changes:
            by_partition[change[0]].append(change)
        sends = [self._send(p, records) for p, records in by_partition.items()]
        await asyncio.gather(*sends)
        WRITTEN.labels(self.topic).inc(len(changes))

    async def _send(self, partition: int, changes: list[Change]) -> None:
        assert self._producer is not None, "changelog not started"
        pending = list(changes)
        while pending:
            batch = self._producer.create_batch()
            taken = 0
            for _, key, value in pending:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    break
                taken += 1
            meta = await (await self._producer.send_batch(batch, self.topic, partition=partition))
            self.known_end[partition] = meta.offset + taken
            pending = pending[taken:]

    async def end_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        reader = self._reader()
        await reader.start()
        try:
            ends = await reader.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        finally:
            await reader.stop()
        return {tp.partition: end for tp, end in ends.items()}

    async def read(self, partitions: Iterable[int]) -> dict[int, dict[str, bytes]]:
        """The latest state per entity in each partition, read from the beginning to the current end."""
        tps = [TopicPartition(self.topic, p) for p in partitions]
        states: dict[int, dict[str, bytes]] = {tp.partition: {} for tp in tps}
        if not tps:
            return states
        reader = self._reader()
        await reader.start()
        try:
            reader.assign(tps)
            ends = await reader.end_offsets(tps)
            await reader.seek_to_beginning(*tps)
            await _read_until(reader, ends, states)
        finally:
            await reader.stop()
        for tp, end in ends.items():
            self.known_end[tp.partition] = end
        return states

    def _reader(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 << 20,
            fetch_max_bytes=64 << 20,
            **self._config,
        )


async def _read_until(
    reader: AIOKafkaConsumer, ends: dict[TopicPartition, int], states: dict[int, dict[str, bytes]]
) -> None:
    remaining = {tp for tp, end in ends.items() if end > 0}
    while remaining:
        batches = await reader.getmany(*remaining, timeout_ms=500, max_records=50_000)
        for tp, records in batches.items():
            partition = states[tp.partition]
            for record in records:
                if record.offset >= ends[tp]:
                    break
                if record.value is None:
                    partition.pop(record.key.decode(), None)
                else:
                    partition[record.key.decode()] = record.value
            RESTORED.labels(tp.topic).inc(len(records))
        for tp in list(remaining):
            if await reader.position(tp) >= ends[tp]:
                remaining.discard(tp)
