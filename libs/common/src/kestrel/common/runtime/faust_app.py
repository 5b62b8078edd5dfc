"""A faust-streaming app as a Kestrel runtime component: the App configured from Kafka settings, the worker that
starts it and reports its end and readiness, and the global table faust's assignor needs (`pip install
kestrel-common[faust]`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import faust
import structlog
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer

from kestrel.common.kafka import aiokafka_config
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import MIN_ISR, min_insync_for

log = structlog.get_logger()


def make_app(
    s: KafkaSettings,
    app_id: str,
    *,
    partitions: int,
    session_timeout_ms: int,
    data_dir: str,
    commit_interval_s: float = 2.8,
    replication: int = 3,
) -> Any:
    """`app_id` (already prefixed) is the consumer group and the prefix of the internal and changelog topics;
    offsets of processed records are committed every `commit_interval_s` (faust's broker_commit_every).
    Those topics get `replication` replicas, capped at the brokers there are, like the catalogue's (_Producer)."""
    app = faust.App(
        app_id,
        broker=[f"kafka://{host.strip()}" for host in s.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(s),
        store="memory://",  # tables are rebuilt from their changelogs on assignment: nothing on local disk to lose
        datadir=str(Path(data_dir) / app_id),
        topic_partitions=partitions,
        web_enabled=False,  # health and metrics come from the Kestrel runtime; two replicas on one host must not clash
        autodiscover=False,
        broker_session_timeout=session_timeout_ms / 1000,
        broker_heartbeat_interval=min(3.0, session_timeout_ms / 3000),
        consumer_auto_offset_reset="earliest",
        broker_commit_every=commit_interval_s,
        producer_acks=-1,
        topic_replication_factor=replication,
        key_serializer="raw",
        value_serializer="raw",
        GlobalTable=GlobalTableOnItsTopic,
    )
    app.transport.Consumer = _Consumer  # type: ignore[misc]  # on this transport only, not faust-wide
    app.transport.Producer = _Producer  # type: ignore[misc]
    return app


class _Producer(AIOKafkaProducer):
    """Creates faust's topics (table changelogs) as `topics apply` creates the catalogue's: replication capped at
    the brokers there are (faust would ask a 1-broker cluster for 3 and fail), and min.insync.replicas one below
    the replication asked, capped alike (min_insync_for); faust itself sets neither."""

    async def create_topic(
        self, topic: str, partitions: int, replication: int, *, config: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        replicas = min(replication, len(self._ensure_producer().client.cluster.brokers()))
        min_isr = min_insync_for(replicas, replication, max(1, replication - 1))
        await super().create_topic(topic, partitions, replicas, config={MIN_ISR: str(min_isr), **(config or {})}, **kw)


class _ConsumerThread(AIOKafkaConsumerThread):
    """Subscribes only once the broker's metadata lists every topic, and seeks a stream partition that has no
    committed offset back to its start after a rebalance.

    faust creates its internal topics (repartition topics, changelogs) just before it subscribes, through its
    producer's client. The broker may answer the consumer's metadata request without a topic created
    milliseconds before; the leader's assignor then ignores it ("Ignoring missing topic") and its partitions
    are nobody's until the metadata refreshes, five minutes later: seen as an alerting replica that evaluated
    no drift report for minutes. Waiting for the metadata before subscribing closes that window.

    While faust restores tables it lets the consumer fetch, and drops what it fetches for the stream
    partitions it holds paused; when the restore ends it seeks them back to their committed offsets. aiokafka's
    seek_to_committed skips a partition whose committed offset is missing (or 0), so whatever was fetched and
    dropped there is lost: a replica killed before its first commit took the records it had not committed,
    and the ones sent while its successor restored, with it. Such a partition goes back to the start, which is
    where auto_offset_reset=earliest would have begun."""

    async def subscribe(self, topics: Iterable[str]) -> None:
        names = set(topics)
        await self.call_thread(self._until_listed, names)
        await super().subscribe(names)

    async def _until_listed(self, names: set[str]) -> None:
        client = self._ensure_consumer()._client

        async def listed() -> set[str]:
            return set((await client.fetch_all_metadata()).topics())

        missing = await until_listed(listed, names, timeout_s=30.0)
        if missing:
            log.warning("faust_topics_missing", topics=sorted(missing), note="subscribing anyway")

    async def seek_to_committed(self) -> Mapping[Any, int]:
        return cast(Mapping[Any, int], await self.call_thread(self._seek_to_committed_or_start))

    async def _seek_to_committed_or_start(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        committed = await consumer.seek_to_committed()
        changelogs = self.consumer.app.tables.changelog_topics
        unset = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        if unset:
            await consumer.seek_to_beginning(*unset)
        return cast(Mapping[Any, int], committed)


async def until_listed(
    listed: Callable[[], Awaitable[set[str]]], names: set[str], *, timeout_s: float, poll_s: float = 0.1
) -> set[str]:
    """Asks `listed` (the topics the broker's metadata names) until it names all of `names` or `timeout_s`
    passes; returns the ones still missing."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = names - await listed()
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(poll_s)


class _Consumer(AIOKafkaConsumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class GlobalTableOnItsTopic(faust.GlobalTable):
    """A global table whose changelog may be a topic of its own (e.g. the silences topic `kestrel-alerts` writes).
    faust's assignor finds a global table's changelog by the default name, `{app}-{table}-changelog`, not by the
    topic the table was given; with any other name the leader's assignment fails on a KeyError and the group
    join never completes. Naming the topic the table actually reads fixes that."""

    def _changelog_topic_name(self) -> str:
        given = self._changelog_topic  # None until faust makes the default one, which calls this for its name
        return str(given.get_topic_name()) if given is not None else str(super()._changelog_topic_name())


class FaustWorker:
    """The faust app as a runtime component: built and started in start(), its end is what wait() reports.
    A service subclasses it: `declare` registers its topics, tables, agents and timers on the new app before it
    starts; `close` releases what `declare` opened, after the app stopped."""

    def __init__(self, make: Any) -> None:
        self.make = make
        """() -> faust.App, called at each start (faust apps do not restart)."""
        self.app: Any = None

    async def declare(self, app: Any) -> None:
        """Topics, tables, agents and timers of the service (nothing by default)."""

    async def close(self) -> None:
        """Clients `declare` opened (nothing by default)."""

    async def start(self) -> None:
        app = self.make()
        Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)
        await self.declare(app)
        self.app = app
        await app.start()

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()
        await self.close()

    async def wait(self) -> None:
        assert self.app is not None
        await self.app.wait_until_stopped()
        if self.app.crash_reason is not None:
            raise RuntimeError(f"faust app crashed: {self.app.crash_reason}")

    def ready(self) -> bool:
        """Partitions assigned and every table recovered from its changelog."""
        app = self.app
        return app is not None and not app.rebalancing and bool(app.tables.recovery.completed.is_set())


async def durable(app: Any) -> None:
    """Waits until the table (changelog) writes made so far are acknowledged by the broker."""
    producer = app.producer
    while producer.buffer.size:
        await producer.buffer.flush()
    await producer.flush()


def _credentials(s: KafkaSettings) -> Any:
    config = aiokafka_config(s)
    if s.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=config["sasl_plain_username"],
            password=config["sasl_plain_password"],
            mechanism=s.kafka_sasl_mechanism,
            ssl_context=config.get("ssl_context"),
        )
    if "ssl_context" in config:
        return faust.SSLCredentials(config["ssl_context"])
    return None
