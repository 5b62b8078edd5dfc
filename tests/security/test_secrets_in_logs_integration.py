"""No secret reaches a log line: the services run as their console scripts at DEBUG, configured with bearer tokens, a
SASL password, a Redis password inside its URL and a PostgreSQL password inside its DSN, are called with the right
token, a wrong one and none, are stopped, and everything they wrote is searched for the secrets."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kestrel.api.v1 import event_pb2, inference_pb2, inference_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from kestrel.devstack.ports import pick_port
from kestrel.devstack.topics import PrefixedTopics

pytestmark = pytest.mark.integration

TOKEN, WRONG = "tok-9f3a1c77e2", "tok-wr0ng-55d1"
SASL, REDIS, PG = "sasl-pw-41b6e0", "redis-pw-8c2d19", "pg-pw-07aa3e"
SECRETS = (TOKEN, WRONG, SASL, REDIS, PG)
BIN = Path(shutil.which("kestrel-ingest") or ".venv/bin/kestrel-ingest").parent


class Process:
    """A service's console script; every line it writes (stdout and stderr) is kept."""

    def __init__(self, script: str, env: dict[str, str]) -> None:
        self.script, self.env, self.lines = script, env, []

    async def start(self, until: str, timeout_s: float = 60) -> dict:
        self._proc = await asyncio.create_subprocess_exec(
            str(BIN / self.script),
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self._line()
                if until in line:
                    return json.loads(line)

    async def _line(self) -> str:
        raw = await self._proc.stdout.readline()
        if not raw:
            raise AssertionError(f"{self.script} ended early:\n" + "\n".join(self.lines[-20:]))
        self.lines.append(raw.decode(errors="replace").rstrip())
        return self.lines[-1]

    async def finish(self, timeout_s: float = 30, stop: bool = True) -> int:
        """SIGTERM (unless `stop` is off: wait for it to end by itself), then the rest of its output."""
        if stop and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(self._proc.communicate(), timeout_s)
        self.lines += rest.decode(errors="replace").splitlines()
        return self._proc.returncode


def _env(prefix: str, **values: object) -> dict[str, str]:
    return {f"{prefix}{k.upper()}": str(v) for k, v in values.items()}


def _common(prefix: str, topics: PrefixedTopics) -> dict[str, str]:
    return _env(
        prefix,
        kafka_bootstrap=topics.bootstrap,
        topic_prefix=topics.prefix,
        kafka_sasl_username="kestrel",
        kafka_sasl_password=SASL,  # configured, unused by the plaintext test broker: it must still never show
        log_format="json",
        log_level="DEBUG",
        metrics_port=0,
        startup_deadline_s=3,
    )


def _grpc_services(topics: PrefixedTopics, redis_url: str) -> list[Process]:
    auth = dict(grpc_host="127.0.0.1", grpc_port=0, require_auth="true", auth_tokens=json.dumps([TOKEN]))
    redis = redis_url.replace("redis://", f"redis://:{REDIS}@")  # the devstack Redis has no AUTH: calls fail, logged
    return [
        Process("kestrel-ingest", _common("KESTREL_INGEST_", topics) | _env("KESTREL_INGEST_", **auth)),
        Process(
            "kestrel-inference",
            _common("KESTREL_INFERENCE_", topics)
            | _env(
                "KESTREL_INFERENCE_",
                **auth,
                redis_url=redis,
                triton_url="127.0.0.1:1",
                follow_lifecycle="false",
                health_port=0,
                triton_timeout_s=0.2,
            ),
        ),
    ]


@pytest.fixture
async def topics(kafka) -> AsyncIterator[PrefixedTopics]:
    topics = PrefixedTopics(kafka.bootstrap)
    await topics.apply(
        "kestrel.events.v1", "kestrel.dlq.ingest.v1", "kestrel.predictions.v1", "kestrel.dlq.inference.v1"
    )
    yield topics


def _event() -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=f"e-{uuid.uuid4().hex}", entity_id="card-1", amount=12.5, currency="EUR", merchant_id="m-1",
        merchant_category="5411", country="DE", channel="pos",
    )  # fmt: skip
    event.event_time.FromMilliseconds(int(time.time() * 1000))
    return event


async def _calls(ingest_port: int, inference_port: int) -> list[str]:
    """Each service called with the token, a wrong one and none: the status codes, in order."""
    codes = []
    for metadata in ((("authorization", f"Bearer {TOKEN}"),), (("authorization", f"Bearer {WRONG}"),), ()):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ingest_port}") as channel:
            codes.append(await _code(ingest_pb2_grpc.IngestServiceStub(channel).Publish, _publish(), metadata))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{inference_port}") as channel:
            request = inference_pb2.PredictRequest(event=_event())
            codes.append(await _code(inference_pb2_grpc.InferenceServiceStub(channel).Predict, request, metadata))
    return codes


def _publish() -> ingest_pb2.PublishRequest:
    return ingest_pb2.PublishRequest(event=_event())


async def _code(method, request, metadata) -> str:
    try:
        await method(request, metadata=metadata, timeout=15)
    except grpc.aio.AioRpcError as err:
        return err.code().name
    return "OK"


async def test_grpc_services_log_no_secret(topics, redis_server):
    processes = _grpc_services(topics, redis_server.url)
    ports = []
    try:
        for process in processes:
            started = await process.start("grpc_started")
            ports.append(int(started["address"].rsplit(":", 1)[1]))
        codes = await _calls(*ports)
    finally:
        exits = [await p.finish() for p in processes]
    lines = [line for p in processes for line in p.lines]
    assert codes[:1] == ["OK"] and codes[2:] == ["UNAUTHENTICATED"] * 4, codes
    assert exits == [0, 0] and len(lines) > 20  # they ran, logged at DEBUG, and stopped cleanly
    assert [line for line in lines if any(secret in line for secret in SECRETS)] == []


async def test_a_failed_start_logs_no_password(topics):
    """prediction-logger with a password in its DSN and no PostgreSQL there: the warning, the error and the one
    line it prints on exit name the database, never the password."""
    port = pick_port(None)
    dsn = f"postgresql://kestrel:{PG}@127.0.0.1:{port}/kestrel"
    process = Process(
        "kestrel-prediction-logger",
        _common("KESTREL_PREDICTION_LOGGER_", topics)
        | _env("KESTREL_PREDICTION_LOGGER_", postgres_dsn=dsn, health_port=0),
    )
    await process.start("postgres not reachable")
    assert await process.finish(stop=False) == 1  # after the 3 s start-up deadline
    assert any(f"127.0.0.1:{port}/kestrel" in line for line in process.lines), process.lines
    assert [line for line in process.lines if any(secret in line for secret in SECRETS)] == []
