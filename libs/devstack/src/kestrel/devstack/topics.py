"""Brings a broker in line with the topic catalogue: creates, grows and reconfigures topics, idempotently."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from kestrel.common.errors import KestrelError
from kestrel.common.topics import MIN_ISR, TopicCatalogue, TopicSpec, load_catalogue

log = structlog.get_logger()


class TopicApplyError(KestrelError):
    """The broker refused a topic change."""


@dataclass
class TopicChanges:
    """What apply_topics did; all empty when the broker already matched the catalogue."""

    created: list[str] = field(default_factory=list)
    partitions: dict[str, tuple[int, int]] = field(default_factory=dict)
    """topic -> (partitions before, after)"""
    configs: dict[str, dict[str, str]] = field(default_factory=dict)
    """topic -> the configs whose values changed (new values)"""
    capped: dict[str, tuple[int, int]] = field(default_factory=dict)
    """topic -> (replication, min.insync.replicas) it has, where below the catalogue's (fewer brokers)"""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.partitions or self.configs)

    def capped_summary(self) -> str:
        """E.g. `16 topics at 1 replicas, min.insync.replicas 1`; empty when no topic is capped."""
        counts = Counter(self.capped.values())
        return "; ".join(f"{n} topics at {r} replicas, min.insync.replicas {m}" for (r, m), n in sorted(counts.items()))


async def apply_topics(
    bootstrap: str, catalogue: TopicCatalogue, prefix: str = "", **client_options: Any
) -> TopicChanges:
    """Create missing topics, add partitions where the catalogue asks for more, align differing configs.

    Partitions are never removed (Kafka cannot); replication is capped at the number of brokers, and
    min.insync.replicas with it (TopicSpec.broker_config): `capped` lists the topics below the catalogue.
    `client_options` go to AIOKafkaAdminClient (security settings).
    """
    wanted = catalogue.with_prefix(prefix) if prefix else catalogue
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options)
    await admin.start()
    try:
        changes = TopicChanges()
        existing = await _partition_counts(admin, wanted.names)
        brokers = len((await admin.describe_cluster())["brokers"])
        await _create(admin, [t for t in wanted if t.name not in existing], brokers, changes)
        await _grow(admin, [t for t in wanted if t.name in existing], existing, changes)
        replication = await _replication(admin, [t.name for t in wanted if t.name in existing])
        await _reconfigure(admin, [t for t in wanted if t.name in existing], replication, changes)
        if changes.created or changes.partitions:
            await _await_metadata(admin, {t.name: max(t.partitions, existing.get(t.name, 0)) for t in wanted})
    finally:
        await admin.close()
    _note_capped(wanted, {t.name: replication.get(t.name, min(t.replication_factor, brokers)) for t in wanted}, changes)
    if changes.changed:
        log.info("topics applied", created=changes.created, partitions=changes.partitions, configs=changes.configs)
    return changes


def _note_capped(wanted: TopicCatalogue, replication: dict[str, int], changes: TopicChanges) -> None:
    """Records and logs, in one line, the topics whose replication (and so min ISR) is below the catalogue's."""
    for spec in wanted:
        if replication[spec.name] < spec.replication_factor:
            min_isr = int(spec.broker_config(replication[spec.name])[MIN_ISR])
            changes.capped[spec.name] = (replication[spec.name], min_isr)
    if changes.capped:
        log.info("replication capped at the brokers there are", capped=changes.capped_summary())


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    present = set(await admin.list_topics()) & set(names)
    if not present:
        return []
    return [t for t in await admin.describe_topics(sorted(present)) if t["error_code"] == 0]


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    return {t["topic"]: len(t["partitions"]) for t in await _describe(admin, names)}


async def _replication(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Replicas per existing topic (of its first partition: Kafka gives every partition the same count)."""
    return {t["topic"]: len(t["partitions"][0]["replicas"]) for t in await _describe(admin, names)}


async def _await_metadata(admin: AIOKafkaAdminClient, expected: dict[str, int], timeout: float = 15.0) -> None:
    """Wait until the broker's metadata shows the changes, so callers can produce to new partitions at once."""
    deadline = time.monotonic() + timeout
    while (seen := await _partition_counts(admin, list(expected))) != expected:
        if time.monotonic() > deadline:
            missing = {name: n for name, n in expected.items() if seen.get(name) != n}
            raise TopicApplyError(f"broker metadata does not show the applied topics after {timeout:.0f}s: {missing}")
        await asyncio.sleep(0.1)


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], brokers: int, changes: TopicChanges) -> None:
    if not specs:
        return
    new = [_new_topic(t, brokers) for t in specs]
    response = await admin.create_topics(new)
    for name, code, *rest in response.topic_errors:
        error = for_code(code) if code else None
        if error is not None and error is not TopicAlreadyExistsError:  # lost a race: someone else created it
            raise TopicApplyError(f"cannot create {name}: {error.__name__} {rest[0] if rest else ''}")
        if error is None:
            changes.created.append(name)


def _new_topic(spec: TopicSpec, brokers: int) -> NewTopic:
    replication = min(spec.replication_factor, brokers)  # the catalogue says 3; a dev broker is alone
    return NewTopic(spec.name, spec.partitions, replication, topic_configs=spec.broker_config(replication))


async def _grow(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], existing: dict[str, int], changes: TopicChanges
) -> None:
    grow = {t.name: NewPartitions(t.partitions) for t in specs if t.partitions > existing[t.name]}
    if not grow:
        return
    await admin.create_partitions(grow)  # raises on a per-topic error
    for name, target in grow.items():
        changes.partitions[name] = (existing[name], target.total_count)


async def _reconfigure(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: dict[str, int], changes: TopicChanges
) -> None:
    if not specs:
        return
    wanted = {t.name: t.broker_config(replication[t.name]) for t in specs}
    current = await _topic_configs(admin, wanted)
    stale = [name for name, config in wanted.items() if any(current[name].get(k) != v for k, v in config.items())]
    if not stale:
        return
    # AlterConfigs replaces a topic's whole dynamic config: send every catalogue value, not only the diff.
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, wanted[name]) for name in stale]
    for response in await admin.alter_configs(resources):
        _raise_resource_errors(response, "alter configs of")
    for name in stale:
        changes.configs[name] = {k: v for k, v in wanted[name].items() if current[name].get(k) != v}


async def _topic_configs(admin: AIOKafkaAdminClient, wanted: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(c)) for name, c in wanted.items()]
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        _raise_resource_errors(response, "describe configs of")
        for resource in response.resources:
            configs[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    return configs


def _raise_resource_errors(response: Any, action: str) -> None:
    for resource in response.resources:
        code, message = resource[0], resource[1]
        if code:
            raise TopicApplyError(f"cannot {action} {resource[3]}: {for_code(code).__name__} {message or ''}")


def _test_prefix(suffix: str) -> str:
    return f"t-{uuid.uuid4().hex[:10]}{suffix}"


@dataclass
class PrefixedTopics:
    """Catalogue topics under a prefix of one test's own, plus an online-store key prefix, so tests sharing a
    broker and a Redis never see each other's records. Services take `prefix` as KESTREL_TOPIC_PREFIX."""

    bootstrap: str
    prefix: str = field(default_factory=lambda: _test_prefix("."))
    key_prefix: str = field(default_factory=lambda: _test_prefix(":fs"))

    def name(self, topic: str) -> str:
        return self.prefix + topic

    async def apply(self, *topics: str) -> None:
        """Creates these catalogue topics (infra/topics.yaml names) under the prefix."""
        catalogue = load_catalogue()
        await apply_topics(self.bootstrap, TopicCatalogue(tuple(catalogue[t] for t in topics)), prefix=self.prefix)

    async def read(self, topic: str, expected: int, timeout_s: float = 30) -> list[Any]:
        """The first `expected` records of a (full, prefixed) topic, from the beginning, as aiokafka records."""
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            records: list[Any] = []
            async with asyncio.timeout(timeout_s):
                while len(records) < expected:
                    records += [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]
            return records
        finally:
            await consumer.stop()
