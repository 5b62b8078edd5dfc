"""`python -m kestrel.ingest` as deployed: serves, exposes /metrics, exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
import uuid

import grpc
import pytest

from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.grpc.health import wait_serving
from kestrel.common.topics import load_catalogue
from kestrel.devstack.ports import free_port
from kestrel.devstack.topics import apply_topics

from .test_ingest_integration import make_event

pytestmark = pytest.mark.integration


async def test_entry_point_serves_metrics_and_stops_on_sigterm(kafka, tmp_path):
    prefix = f"t-{uuid.uuid4().hex[:10]}."
    await apply_topics(kafka.bootstrap, load_catalogue(), prefix=prefix)
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "KESTREL_INGEST_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "KESTREL_INGEST_TOPIC_PREFIX": prefix,
        "KESTREL_INGEST_GRPC_PORT": str(grpc_port),
        "KESTREL_INGEST_METRICS_PORT": str(metrics_port),
        "KESTREL_INGEST_LOG_FORMAT": "json",
    }
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "kestrel.ingest"], env=env, stdout=log, stderr=log)
    try:
        address = f"127.0.0.1:{grpc_port}"
        await wait_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            await ingest_pb2_grpc.IngestServiceStub(channel).Publish(ingest_pb2.PublishRequest(event=make_event()))
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        assert 'kestrel_ingest_events_total{outcome="accepted"} 1.0' in body
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "ingest.log").read_text()
    assert '"service_stopping"' in text and "Traceback" not in text


FENCED_AFTER_START = """
import confluent_kafka
from kestrel.common.runtime.consumer import CheckedProducer
from kestrel.ingest import __main__ as entry

start = CheckedProducer.start

async def start_then_fenced(self):
    await start(self)
    self._on_error(confluent_kafka.KafkaError(confluent_kafka.KafkaError._FENCED, "fenced", fatal=True))

CheckedProducer.start = start_then_fenced
entry.main()
"""


async def test_a_fatal_producer_error_ends_the_process_with_a_non_zero_status(kafka):
    prefix = f"t-{uuid.uuid4().hex[:10]}."
    await apply_topics(kafka.bootstrap, load_catalogue(), prefix=prefix)
    env = {
        **os.environ,
        "KESTREL_INGEST_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "KESTREL_INGEST_TOPIC_PREFIX": prefix,
        "KESTREL_INGEST_GRPC_PORT": str(free_port()),
        "KESTREL_INGEST_METRICS_PORT": "0",
        "KESTREL_INGEST_LOG_FORMAT": "json",
    }
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", FENCED_AFTER_START], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "fenced" in result.stdout + result.stderr


async def test_bad_configuration_exits_with_the_variable_name(tmp_path):
    env = {**os.environ, "KESTREL_INGEST_GRPC_PORT": "not-a-port"}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "kestrel.ingest"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "KESTREL_INGEST_GRPC_PORT" in result.stderr
