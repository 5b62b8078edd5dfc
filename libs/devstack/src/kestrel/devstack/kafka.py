"""A single-node Apache Kafka broker in KRaft mode (broker + controller), run from its jars."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import uuid
from pathlib import Path

from aiokafka import AIOKafkaClient

from kestrel.devstack.kafka_dist import ensure_kafka_jars
from kestrel.devstack.ports import HOST, pick_port, wait_connectable
from kestrel.devstack.process import ComponentError, ServerProcess, run_once

# Loggers that are chatty at INFO and say nothing a developer needs.
_QUIET_LOGGERS = ("kafka.request.logger", "state.change.logger", "kafka.authorizer.logger", "org.apache.kafka.clients")


def new_cluster_id() -> str:
    """A KRaft cluster id (base64url of a random UUID), as `kafka-storage random-uuid` prints."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # Kafka avoids these too: they read as CLI flags
            return cluster_id


def render_server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tests join consumer groups quickly: no rebalance delay, short session timeouts allowed.
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        # Offset commits answered in ~1 ms, not after the group coordinator's default 5 ms append linger
        # (Kafka 4 coordinator): measured 6.4 ms -> 0.87 ms p50 per commit (docs/perf.md).
        "group.coordinator.append.linger.ms": "0",
        # Topics come from infra/topics.yaml (or the test's topic_factory), never from a typo.
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def render_log4j2(level: str = "INFO") -> str:
    """log4j2 config: everything to stdout, which the stack redirects into the component's log file."""
    lines = [
        "status = warn",
        "appender.out.type = Console",
        "appender.out.name = out",
        "appender.out.layout.type = PatternLayout",
        "appender.out.layout.pattern = [%d] %p %m (%c)%n",
        f"rootLogger.level = {level}",
        "rootLogger.appenderRef.out.ref = out",
    ]
    for i, name in enumerate(_QUIET_LOGGERS):
        lines += [f"logger.q{i}.name = {name}", f"logger.q{i}.level = WARN"]
    return "\n".join(lines) + "\n"


class KafkaBroker(ServerProcess):
    """Kafka on 127.0.0.1:`port`; state (data, configs, kafka.log) under `<state_dir>/kafka`."""

    name = "kafka"
    stop_grace = 20.0  # a clean shutdown flushes and closes logs; later starts then skip recovery

    def __init__(
        self, state_dir: Path, port: int | None = None, controller_port: int | None = None, heap: str = "1g"
    ) -> None:
        super().__init__(state_dir)
        self.port = pick_port(port)
        self.controller_port = pick_port(controller_port)
        self.heap = heap
        self._libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    async def _prepare(self) -> None:
        self._libs = await asyncio.to_thread(ensure_kafka_jars)
        data = self.home / "data"
        (self.home / "server.properties").write_text(render_server_properties(self.port, self.controller_port, data))
        (self.home / "log4j2.properties").write_text(render_log4j2())
        if not (data / "meta.properties").exists():
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(await self._formatted_template(), data)

    async def _formatted_template(self) -> Path:
        """An empty formatted log dir, made once per cache: formatting costs a JVM start (seconds).

        Stacks copied from it share a cluster id, which is harmless: they never talk to each other.
        """
        assert self._libs is not None
        template = self._libs.parent / "formatted"
        if (template / "meta.properties").exists():
            return template
        work = self._libs.parent / f"formatting-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        work.mkdir()
        config = work / "server.properties"
        config.write_text(render_server_properties(self.port, self.controller_port, work / "data"))
        argv = self._java("kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(config))
        await run_once(self.name, argv, self.log_path, cwd=work)
        with contextlib.suppress(OSError):  # another session made it first
            (work / "data").rename(template)
        shutil.rmtree(work, ignore_errors=True)
        return template

    def _command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.home / "server.properties"))

    def _popen_options(self) -> dict[str, object]:
        return {"cwd": self.home}

    async def _probe(self) -> None:
        await wait_connectable(self.port)
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
        try:
            await client.bootstrap()
            if not client.cluster.brokers():
                raise ComponentError(self.name, "metadata lists no broker yet")
        finally:
            await client.close()

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            _java_executable(),
            f"-Xmx{self.heap}",
            "-Xms256m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self._libs}/*",
            main_class,
            *args,
        ]


def _java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java:
        raise ComponentError("kafka", "Java 17+ is needed to run the broker; run scripts/bootstrap.sh")
    return java
