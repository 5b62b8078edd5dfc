"""The faust App of the alerting service, configured from its settings (its topics, tables and agents are
declared in channels.py and pipeline.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from kestrel.alerting.settings import AlertingSettings
from kestrel.common.kafka import aiokafka_config


def make_app(s: AlertingSettings) -> faust.App:
    app_id = f"{s.topic_prefix}{s.app_id}"  # the consumer group, and the prefix of internal and changelog topics
    return faust.App(
        app_id,
        broker=[f"kafka://{host.strip()}" for host in s.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(s),
        store="memory://",  # tables are rebuilt from their changelogs on assignment: nothing on local disk to lose
        datadir=str(Path(s.data_dir) / app_id),
        topic_partitions=s.partitions,
        web_enabled=False,  # health and metrics come from the Kestrel runtime; two replicas on one host must not clash
        autodiscover=False,
        broker_session_timeout=s.session_timeout_ms / 1000,
        broker_heartbeat_interval=min(3.0, s.session_timeout_ms / 3000),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        GlobalTable=GlobalTableOnItsTopic,
    )


class GlobalTableOnItsTopic(faust.GlobalTable):
    """A global table whose changelog may be a topic of its own (the silences topic `kestrel-alerts` writes).
    faust's assignor finds a global table's changelog by the default name, `{app}-{table}-changelog`, not by the
    topic the table was given; with any other name the leader's assignment fails on a KeyError and the group
    join never completes. Naming the topic the table actually reads fixes that."""

    def _changelog_topic_name(self) -> str:
        given = self._changelog_topic  # None until faust makes the default one, which calls this for its name
        return str(given.get_topic_name()) if given is not None else str(super()._changelog_topic_name())


def _credentials(s: AlertingSettings) -> Any:
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
