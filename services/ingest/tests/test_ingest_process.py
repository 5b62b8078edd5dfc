"""`python -m kestrel.ingest` as deployed: serves, exposes /metrics, exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

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


def two_free_ports() -> int:
    """A port p with p + 1 free too (worker i serves metrics on METRICS_PORT + i)."""
    while True:
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def accepted(metrics_port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    line = next((x for x in body.splitlines() if x.startswith('kestrel_ingest_events_total{outcome="accepted"}')), "")
    return float(line.split()[-1]) if line else 0.0


async def workers_process(kafka, tmp_path, metrics_port: int) -> tuple[subprocess.Popen[bytes], str]:
    prefix = f"t-{uuid.uuid4().hex[:10]}."
    await apply_topics(kafka.bootstrap, load_catalogue(), prefix=prefix)
    grpc_port = free_port()
    env = {
        **os.environ,
        "KESTREL_INGEST_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "KESTREL_INGEST_TOPIC_PREFIX": prefix,
        "KESTREL_INGEST_GRPC_PORT": str(grpc_port),
        "KESTREL_INGEST_METRICS_PORT": str(metrics_port),
        "KESTREL_INGEST_WORKERS": "2",
        "KESTREL_INGEST_LOG_FORMAT": "json",
    }
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "kestrel.ingest"], env=env, stdout=log, stderr=log)
    log.close()
    address = f"127.0.0.1:{grpc_port}"
    await wait_serving(address)
    for port in (metrics_port, metrics_port + 1):  # both workers up, not only the first to bind
        await wait_serving(address)
        await asyncio.to_thread(_until_answers, port)
    return proc, address


def _until_answers(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            accepted(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def test_two_workers_share_the_grpc_port_and_stop_together_on_sigterm(kafka, tmp_path):
    metrics_port = two_free_ports()
    proc, address = await workers_process(kafka, tmp_path, metrics_port)
    try:
        assert len(children(proc.pid)) == 2
        for _ in range(30):  # a new connection each time: the kernel spreads them over the two sockets
            async with grpc.aio.insecure_channel(address) as channel:
                stub = ingest_pb2_grpc.IngestServiceStub(channel)
                await stub.Publish(ingest_pb2.PublishRequest(event=make_event()))
        counts = [await asyncio.to_thread(accepted, port) for port in (metrics_port, metrics_port + 1)]
        assert sum(counts) == 30 and min(counts) > 0, counts
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
        assert children(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_a_worker_that_dies_stops_the_others_and_the_parent_fails(kafka, tmp_path):
    proc, _ = await workers_process(kafka, tmp_path, two_free_ports())
    try:
        first, second = children(proc.pid)
        os.kill(first, signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait, 30) != 0
        assert not Path(f"/proc/{second}").exists() or "Z" in Path(f"/proc/{second}/stat").read_text().split()[2]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "exited with status -9; stopping the others" in (tmp_path / "ingest.log").read_text()
