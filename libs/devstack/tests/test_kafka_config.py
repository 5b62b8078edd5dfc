"""Rendering of the broker's server.properties and log4j2 config, and KRaft cluster ids."""

from __future__ import annotations

import base64
from pathlib import Path

from kestrel.devstack.kafka import new_cluster_id, render_log4j2, render_server_properties


def parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_single_node_kraft_on_loopback() -> None:
    props = parse(render_server_properties(9092, 9093, Path("/state/kafka/data")))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["log.dirs"] == "/state/kafka/data"


def test_internal_topics_fit_one_broker_and_topics_are_never_auto_created() -> None:
    props = parse(render_server_properties(1, 2, Path("/d")))
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_offset_commits_are_not_held_back_by_the_coordinator_linger() -> None:
    props = parse(render_server_properties(1, 2, Path("/d")))
    assert props["group.coordinator.append.linger.ms"] == "0"


def test_log4j2_logs_to_stdout_at_info_with_chatty_loggers_at_warn() -> None:
    config = parse(render_log4j2().replace(" = ", "="))
    assert config["appender.out.type"] == "Console"
    assert config["rootLogger.level"] == "INFO"
    quiet = {config[k]: config[k.replace(".name", ".level")] for k in config if k.endswith(".name") and "logger.q" in k}
    assert quiet["kafka.request.logger"] == "WARN"


def test_cluster_id_is_a_base64url_uuid_that_never_looks_like_a_flag() -> None:
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
