"""Inference rows: gRPC Predict (online features from Redis + Triton) next to calling Triton directly with the
same model, and the stream scorer next to Triton's own rate for 1024-row requests.

The API and the stream scorer run as their console scripts, each in its own process (as deployed); load comes
from spawned client processes, so neither side shares an event loop with the other. Direct-Triton baselines reuse
bench.triton's measuring code and run in the same run, phase by phase next to the rows they are compared with.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from bench import consume
from bench.fixtures import REPO, fresh_catalogue, stop_process
from bench.profile import recording
from bench.report import Row, latency_ms
from bench.triton import PROCESSES, Measure, Phase, Result, server_time, share
from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.grpc.server import GrpcServer, GrpcServerSettings, ServiceBinding
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic, load_catalogue
from kestrel.devstack.paths import model_repository
from kestrel.devstack.ports import free_port
from kestrel.devstack.redis_server import RedisServer
from kestrel.devstack.triton import TritonServer
from kestrel.featureset import load_feature_set
from kestrel.featureset.state import FeatureComputer
from kestrel.featureset.wire import VectorEncoder
from kestrel.model.triton_config import input_width
from kestrel.online_store import OnlineStoreWriter, VectorWrite, redis_client
from kestrel.simulator.generator import Generator, GeneratorConfig

GROUP = "inference"
MODEL = "kestrel_fraud"
KEY_PREFIX = "bench:fs"
CONCURRENCY = (1, 16, 64, 256)
BATCH_CALL = 256
"""Requests per PredictBatch call (and rows per direct Triton request next to it)."""
BATCH_INFLIGHT = 4
STREAM_ROWS = 1024
"""Rows per Triton request of the stream scorer (triton_max_rows) and of its raw baseline."""
STREAM_INFLIGHT = 4
"""Triton requests in flight: the scorer's scorer_concurrency, and the baseline's concurrency."""
CARDS = 10_000
SCORER_BATCH = 4096
"""Records per consumer batch of the scorer (its max_batch default)."""
WORKERS, WORKERS_AT = 2, 64
"""The API's SO_REUSEPORT workers measured, and at which concurrency (the bar's)."""
FLOOR_AT = (1, 64)
"""Concurrencies with a gRPC floor row (the bars: p99 at 1, throughput at 64)."""
NOISE = "2 shared cores (service, Triton, Redis, Kafka and clients): noisy"


def direct_name(concurrency: int) -> str:
    return f"Triton direct, 1 row/request, concurrency {concurrency}"


def predict_name(concurrency: int) -> str:
    return f"gRPC Predict, concurrency {concurrency}"


DIRECT_BATCH = f"Triton direct, {BATCH_CALL} rows/request, concurrency {BATCH_INFLIGHT}"
DIRECT_STREAM = f"Triton direct, {STREAM_ROWS} rows/request, concurrency {STREAM_INFLIGHT}"


def now_ms() -> int:
    return int(time.time() * 1000)


# --- online store -------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    generator: Generator
    """Simulator whose clock ends where the seeded history does; it makes the request events."""
    vectors: list[dict[str, Any]]
    """Each seeded card's newest vector, as kestrel.features.v1 records."""
    events: int
    logged: list[dict[str, Any]]
    """Every applied event's kestrel.features.v1 record, with the event as the features service writes it
    (what fills the online store's event logs)."""

    @property
    def cards(self) -> frozenset[str]:
        return frozenset(v["entity_id"] for v in self.vectors)


def seed_history(events: int) -> Seeded:
    """Simulator events over the last 24 h (ending a minute ago) for CARDS cards and, per card, the vector the
    features service computes after its newest event (its own FeatureComputer, fed the events in order)."""
    card = load_feature_set("card")
    now = now_ms()
    generator = Generator(GeneratorConfig(cards=CARDS, seed=17, labels=False), now - 86_400_000)
    history = generator.step(events, now - 60_000).events
    computer = FeatureComputer(card)
    states: dict[str, Any] = {}
    newest: dict[str, tuple[dict[str, Any], list[float]]] = {}
    applied = []
    for record in history:
        state = states.get(record["entity_id"])
        if state is None:
            state = states[record["entity_id"]] = computer.new_state()
        vector = computer.update(state, record)
        if isinstance(vector, list):
            newest[record["entity_id"]] = (record, vector)
            applied.append((record, vector))
    vectors = [vector_record(card, r, v) for r, v in newest.values()]
    logged = [vector_record(card, r, v, with_event=True) for r, v in applied]
    return Seeded(generator, vectors, events, logged)


def vector_record(card: Any, event: dict[str, Any], vector: list[float], with_event: bool = False) -> dict[str, Any]:
    """The kestrel.features.v1 record the features service writes for an event (with the event's values for
    the online store's event log when asked)."""
    record = {
        "entity_id": event["entity_id"],
        "event_id": event["event_id"],
        "event_time": event["event_time"],
        "feature_set_version": card.version_id,
        "features": dict(zip(card.names, vector)),
        "computed_at": event["event_time"],
    }
    if with_event:
        record |= {
            "categories": {s: event[s] for s in card.categorical_sources},
            "numbers": {s: event[s] for s in card.numeric_sources},
            "log_retention_ms": (card.max_window_s + card.allowed_lateness_s) * 1000,
            "log_cap": card.max_events_per_entity,
        }
    return record


async def write_online(redis_url: str, vectors: list[dict[str, Any]]) -> None:
    client = redis_client(redis_url)
    try:
        writer = OnlineStoreWriter(client, ttl_s=2 * 86_400)
        writes = [VectorWrite.from_record(v, KEY_PREFIX) for v in vectors]
        for i in range(0, len(writes), 2000):
            await writer.write(writes[i : i + 2000])
    finally:
        await client.aclose()


def request_events(seeded: Seeded, n: int, parts: int) -> list[list[dict[str, Any]]]:
    """n new simulator events (times from the previous call up to now) of seeded cards, split in `parts`."""
    cards = seeded.cards
    events: list[dict[str, Any]] = []
    while len(events) < n:
        events += [e for e in seeded.generator.step(n, now_ms()).events if e["entity_id"] in cards]
    events = events[:n]
    return [events[i::parts] for i in range(parts)]


# --- the service in its own process -------------------------------------------------------------------------


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    log_path: Path
    target: str = ""
    metrics_url: str = ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_summary(self) -> str:
        """Warnings and errors the service logged (JSON lines), e.g. "2 error (triton_call_failed)"."""
        levels: Counter[str] = Counter()
        first: dict[str, str] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                level, event = str(doc.get("level", "?")), str(doc.get("event", ""))
            except ValueError:  # librdkafka writes its own lines to stderr
                level, event = "non-JSON", line
            levels[level] += 1
            first.setdefault(level, event[:90])
        return "; ".join(
            f"{n} {level} (first: {first[level]})" for level, n in levels.items() if level not in ("info", "debug")
        )


def service_env(
    bootstrap: str, prefix: str, redis_url: str, triton_url: str, port: int, **extra: str
) -> dict[str, str]:
    """The environment of `kestrel-inference` for this bench: WARNING-level JSON logs, no metrics/health port
    unless `extra` sets one."""
    return {
        **os.environ,
        "KESTREL_INFERENCE_KAFKA_BOOTSTRAP": bootstrap,
        "KESTREL_INFERENCE_TOPIC_PREFIX": prefix,
        "KESTREL_INFERENCE_REDIS_URL": redis_url,
        "KESTREL_INFERENCE_KEY_PREFIX": KEY_PREFIX,
        "KESTREL_INFERENCE_TRITON_URL": triton_url,
        "KESTREL_INFERENCE_GRPC_HOST": "127.0.0.1",
        "KESTREL_INFERENCE_GRPC_PORT": str(port),
        "KESTREL_INFERENCE_METRICS_PORT": "0",
        "KESTREL_INFERENCE_HEALTH_PORT": "0",
        "KESTREL_INFERENCE_LOG_FORMAT": "json",
        "KESTREL_INFERENCE_LOG_LEVEL": "WARNING",
        **{f"KESTREL_INFERENCE_{k.upper()}": v for k, v in extra.items()},
    }


@contextlib.contextmanager
def inference_process(
    script: str, bootstrap: str, prefix: str, redis_url: str, triton_url: str, log_path: Path, **extra: str
) -> Iterator[Service]:
    """A console script (`kestrel-inference` or `kestrel-inference-scorer`) in its own process, as deployed;
    its output goes to log_path."""
    port, metrics = free_port(), free_port()
    env = service_env(bootstrap, prefix, redis_url, triton_url, port, metrics_port=str(metrics), **extra)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        command = [str(Path(sys.executable).with_name(script))]  # the venv's console script, beside its python
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        yield Service(proc, log_path, f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics}/metrics")
    finally:
        stop_process(proc)


@contextlib.contextmanager
def floor_process(log_path: Path) -> Iterator[Service]:
    """`serve_floor` below in its own process: the Python gRPC ceiling on this machine, for comparison."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.inference", "floor", str(port)], cwd=REPO, stdout=log, stderr=log
        )
    try:
        yield Service(proc, log_path, f"127.0.0.1:{port}")
    finally:
        stop_process(proc)


class _ConstantPredict(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self) -> None:
        self.answer = inference_pb2.PredictResponse(
            prediction_id="0" * 32,
            score=0.01,
            threshold=0.5,
            model_name=MODEL,
            model_version="1",
            features_age_ms=1000,
            feature_set_version="card.v1",
        )

    async def Predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictResponse:
        return self.answer


async def serve_floor(port: int) -> None:
    """The service's own gRPC front (kestrel GrpcServer: interceptors, health, reflection) answering every
    Predict with a constant: no parsing, Redis, Triton or Kafka."""
    server = GrpcServer(
        GrpcServerSettings(host="127.0.0.1", port=port),
        [
            ServiceBinding(
                _ConstantPredict(),
                inference_pb2_grpc.add_InferenceServiceServicer_to_server,
                inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
            )
        ],
    )
    await server.start()
    await asyncio.Event().wait()


async def service_metrics(url: str) -> dict[str, float]:
    """Sums and counts of the service's score, Triton-call and batch-size histograms (Prometheus text)."""

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        wanted = {
            f"kestrel_inference_{m}_{k}"
            for m in ("score_seconds", "triton_seconds", "batch_rows")
            for k in ("sum", "count")
        }
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name in wanted
        }

    return await asyncio.to_thread(scrape)


async def wait_serving(service: Service, timeout_s: float = 60) -> None:
    """Until the gRPC health check answers SERVING (the server starts after Kafka, Triton and the model check)."""
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(service.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if not service.alive():
                raise RuntimeError(f"the server exited before serving; see {service.log_path}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the server was not serving after {timeout_s:.0f}s; see {service.log_path}")


# --- Predict load from client processes ---------------------------------------------------------------------


@dataclass
class PredictResult:
    calls: int
    per_call: int
    processes: int
    elapsed: float
    p50: float
    p99: float
    errors: dict[str, int]
    reused: bool
    server: dict[str, float]
    """Triton's statistics over the phase (bench.triton.server_time)."""
    service: dict[str, float]
    """The service's own histograms over the phase: batches scored, their rows, score and Triton-call time."""

    @property
    def throughput(self) -> float:
        return self.calls * self.per_call / self.elapsed


class PredictMeasure:
    """Like bench.triton.Measure, with Predict/PredictBatch calls to the service instead of Triton infer."""

    def __init__(self, triton: TritonServer, pool: Any, seeded: Seeded, duration: float) -> None:
        self.triton, self.pool, self.seeded, self.duration = triton, pool, seeded, duration

    async def __call__(self, service: Service, concurrency: int, per_call: int = 1) -> PredictResult:
        processes = min(PROCESSES, concurrency)
        phase = Phase(MODEL, concurrency, processes=processes)
        # Distinct events for every request of the phase; cycled if used up (noted).
        per_s = 4000 if per_call == 1 else 12_000  # a little more than this machine answers per client process
        events = request_events(self.seeded, max(int(per_s * self.duration), per_call * 16) * processes, processes)
        metrics = (lambda: service_metrics(service.metrics_url)) if service.metrics_url else _no_metrics
        before, ours = await self.triton.model_stats(MODEL), await metrics()
        start_at = time.time() + 1.5  # protos built, connected and warm before the clock starts
        jobs = [
            (service.target, events[i], per_call, share(phase, i), start_at, self.duration) for i in range(processes)
        ]
        parts = await asyncio.to_thread(self.pool.map, _predict_client, jobs)
        after, ours_after = await self.triton.model_stats(MODEL), await metrics()
        samples = [s for part in parts for s in part[0]]
        errors: Counter[str] = Counter()
        for part in parts:
            errors.update(part[2])
        p50, p99 = latency_ms(samples) if samples else (float("nan"), float("nan"))
        return PredictResult(
            len(samples),
            per_call,
            processes,
            max(p[1] for p in parts),
            p50,
            p99,
            dict(errors),
            any(p[3] for p in parts),
            server_time(before, after),
            {k: v - ours.get(k, 0.0) for k, v in ours_after.items()},
        )


async def _no_metrics() -> dict[str, float]:
    return {}


_Job = tuple[str, list[dict[str, Any]], int, int, float, float]
_Part = tuple[list[float], float, dict[str, int], bool]


def _predict_client(job: _Job) -> _Part:
    """One client process: `inflight` concurrent calls for `duration` seconds from `start_at` (wall clock)."""
    return asyncio.run(_predict_loop(*job))


async def _predict_loop(
    target: str, events: list[dict[str, Any]], per_call: int, inflight: int, start_at: float, duration: float
) -> _Part:
    requests = [inference_pb2.PredictRequest(event=record_to_event(e)) for e in events]
    calls: list[Any] = requests
    if per_call > 1:
        calls = [
            inference_pb2.PredictBatchRequest(requests=requests[i : i + per_call])
            for i in range(0, len(requests) - per_call + 1, per_call)
        ]
    async with grpc.aio.insecure_channel(target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        rpc = stub.Predict if per_call == 1 else stub.PredictBatch
        for i in range(10):  # connection and both sides warm (uses the last calls of the pool)
            await rpc(calls[-1 - i], timeout=30)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        start = time.perf_counter()
        deadline = start + duration
        samples: list[float] = []
        errors: Counter[str] = Counter()
        taken = itertools.count()

        async def worker() -> None:
            while (begin := time.perf_counter()) < deadline:
                try:
                    await rpc(calls[next(taken) % len(calls)], timeout=30)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    continue
                samples.append(time.perf_counter() - begin)

        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - start
    return samples, elapsed, dict(errors), next(taken) > len(calls)


def predict_row(name: str, result: PredictResult, baseline: str | None, lead: str = "", log: str = "") -> Row:
    s, m = result.server, result.service
    unit = "request" if result.per_call == 1 else f"call of {result.per_call} events (throughput in events/s)"
    notes = f"{lead}{result.processes} client process(es), a fresh simulator event of a seeded card per {unit}"
    batches = m.get("kestrel_inference_score_seconds_count", 0)
    if batches:
        calls = max(m.get("kestrel_inference_triton_seconds_count", 0), 1)
        notes += (
            f"; service: {m['kestrel_inference_batch_rows_sum'] / batches:.1f} rows/scored batch, score "
            f"{1000 * m['kestrel_inference_score_seconds_sum'] / batches:.2f} ms/batch (Triton call "
            f"{1000 * m['kestrel_inference_triton_seconds_sum'] / calls:.2f} ms) mean"
        )
    notes += (
        f"; Triton: {s['rows_per_execution']:.1f} rows/execution, queue {s['queue_us_per_request']:.0f} "
        f"us/request, compute {s['infer_us_per_row']:.0f} us/row"
    )
    if result.errors:
        notes += f"; ERRORS {result.errors}"
    if result.reused:
        notes += "; event pool cycled"
    if log:
        notes += f"; API service log over the whole run: {log}"
    return Row(
        GROUP,
        name,
        result.throughput,
        result.p50,
        result.p99,
        baseline=baseline,
        notes=notes,
        extra={**s, **m, "calls": result.calls, **{f"error_{k}": v for k, v in result.errors.items()}},
    )


def floor_row(concurrency: int, result: PredictResult) -> Row:
    notes = (
        f"the service's gRPC front (kestrel GrpcServer, same interceptors) answering a constant: no parse, "
        f"Redis, Triton or Kafka; same clients ({result.processes} process(es)); the most one Python process "
        f"serves here"
    )
    if result.errors:
        notes += f"; ERRORS {result.errors}"
    return Row(
        GROUP,
        f"gRPC floor (constant Predict answer), concurrency {concurrency}",
        result.throughput,
        result.p50,
        result.p99,
        baseline=direct_name(concurrency),
        notes=notes,
        extra={"calls": result.calls},
    )


def direct_row(name: str, result: Result, baseline: str | None = None) -> Row:
    row = result.row(name, baseline)
    row.group = GROUP
    row.notes = f"same model, same run; {row.notes}"
    return row


# --- stream scorer ------------------------------------------------------------------------------------------


async def produce_vectors(bootstrap: str, topic: str, seeded: Seeded, n: int) -> None:
    """n kestrel.features.v1 records as the features service writes them (packed): the seeded cards' real
    vectors, cycled, each with its own event id/time."""
    card = load_feature_set("card")
    encoder = VectorEncoder.for_feature_set(serde_for_topic(FileSchemaRegistry(), topic, "feature_vector"), card)
    t0 = now_ms() - n
    base = [(v["entity_id"], [v["features"][name] for name in card.names]) for v in seeded.vectors]
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    try:
        for i in range(0, n, 10_000):
            chunk = [base[j % len(base)] + (j,) for j in range(i, min(n, i + 10_000))]
            await producer.send_many(
                OutRecord(topic, encoder.encode(entity, f"s-{j}", t0 + j, values, t0 + j), entity.encode())
                for entity, values, j in chunk
            )
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def topic_counter(bootstrap: str) -> AsyncIterator[Callable[[str], Any]]:
    catalogue = load_catalogue()
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()

    async def count(topic: str) -> int:
        """Records on a prefixed catalogue topic (sum of its partitions' end offsets)."""
        name = next(t.name for t in catalogue.topics if topic.endswith(t.name))
        partitions = [TopicPartition(topic, p) for p in range(catalogue[name].partitions)]
        return sum((await reader.end_offsets(partitions)).values())

    try:
        yield count
    finally:
        await reader.stop()


@dataclass
class StreamResult:
    rate: float
    """Predictions/s from the first prediction on the topic until the last (start-up and group join excluded)."""
    total_s: float
    """From starting the scorer process until all predictions were on the topic."""
    dead_letters: int
    server: dict[str, float]
    log: str
    topic: str
    """The features topic it drained (left filled)."""
    cpu_us: float
    """The scorer process's CPU time (all its threads) per prediction over the same span as `rate`."""


async def stream_run(
    bootstrap: str,
    triton: TritonServer,
    redis_url: str,
    seeded: Seeded,
    n: int,
    log_path: Path,
    timeout_s: float = 240,
    profile: Path | None = None,
) -> StreamResult:
    """The scorer draining n pre-produced vectors; with `profile`, py-spy samples it from its first prediction
    to its last into that file."""
    prefix = await fresh_catalogue(bootstrap)
    await produce_vectors(bootstrap, prefix + "kestrel.features.v1", seeded, n)
    predictions, dlq = prefix + "kestrel.predictions.v1", prefix + dead_letter_topic("inference")
    async with topic_counter(bootstrap) as count:
        before = await triton.model_stats(MODEL)
        started = time.perf_counter()
        with (
            inference_process(
                "kestrel-inference-scorer",
                bootstrap,
                prefix,
                redis_url,
                triton.grpc_url,
                log_path,
                group_id=f"{prefix}scorer",
                triton_max_rows=str(STREAM_ROWS),
                scorer_concurrency=str(STREAM_INFLIGHT),
            ) as service,
            contextlib.ExitStack() as spy,
        ):
            first: tuple[float, int] | None = None
            deadline = time.monotonic() + timeout_s
            while True:
                done = await count(predictions)
                now = time.perf_counter()
                if done and first is None:
                    first, cpu_first = (now, done), cpu_seconds(service.proc.pid)
                    if profile is not None:
                        spy.enter_context(recording(service.proc.pid, profile))
                if done >= n and first is not None:
                    break
                if not service.alive():
                    raise RuntimeError(f"the stream scorer exited; see {log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the scorer produced {done:,} of {n:,} predictions in {timeout_s:.0f}s")
                await asyncio.sleep(0.05)
            cpu = cpu_seconds(service.proc.pid) - cpu_first
            after = await triton.model_stats(MODEL)
            dead = await count(dlq)
        log = service.log_summary()
    # All n already there at the first look (cannot happen at these sizes): the rate including start-up.
    rate = (n - first[1]) / (now - first[0]) if first[1] < n else n / (now - started)
    cpu_us = cpu * 1e6 / (n - first[1]) if first[1] < n else float("nan")
    return StreamResult(
        rate, now - started, dead, server_time(before, after), log, prefix + "kestrel.features.v1", cpu_us
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere): what the scorer spends per event
    whatever else runs on the machine, which its rate alone does not say on shared cores."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream_row(result: StreamResult, n: int, cards: int, direct: Result) -> Row:
    s = result.server
    raw = direct.requests * direct.phase.rows / direct.elapsed
    busy = result.rate * s["infer_us_per_row"] / 1e6
    limit = (
        "Triton"
        if result.rate > 0.8 * raw
        else f"the scorer process, not Triton (Triton computed {busy:.0%} of the time at this rate)"
    )
    notes = (
        f"{n:,} Avro vectors pre-produced (the {cards:,} seeded cards' "
        f"real vectors, cycled, fresh event ids), 1 scorer process: decode, {STREAM_ROWS} rows/Triton request, "
        f"{STREAM_INFLIGHT} in flight, prediction records produced + acked, commit; first to last prediction "
        f"({result.total_s:.1f} s from process start), scorer CPU {result.cpu_us:.1f} us/event; "
        f"Triton {s['rows_per_execution']:.0f} rows/execution, "
        f"compute {s['infer_us_per_row']:.1f} us/row; limit: {limit}"
    )
    if result.dead_letters:
        notes += f"; {result.dead_letters} DEAD LETTERS"
    if result.log:
        notes += f"; service log: {result.log}"
    return Row(
        GROUP,
        "stream scorer, Kafka to Triton to Kafka",
        result.rate,
        baseline=DIRECT_STREAM,
        notes=notes,
        extra={
            **s,
            "total_s": result.total_s,
            "dead_letters": result.dead_letters,
            "triton_busy_share": busy,
            "cpu_us_per_event": result.cpu_us,
        },
    )


# --- the suite ----------------------------------------------------------------------------------------------


@dataclass
class Servers:
    triton: TritonServer
    redis: RedisServer
    seeded: Seeded
    direct: Measure
    """Direct Triton phases from the client pool."""
    predict: PredictMeasure
    """Predict phases from the same pool."""


@contextlib.asynccontextmanager
async def servers(
    workdir: Path, history: int, duration: float, name: str = "inference", online: bool = True
) -> AsyncIterator[Servers]:
    """Triton with the model, Redis holding the seeded cards' vectors and event logs (with `online`), and the
    client processes that measure phases of `duration` seconds."""
    async with contextlib.AsyncExitStack() as stack:
        triton = TritonServer(workdir / f"{name}-triton", model_repository(), load_models=[MODEL])
        redis = RedisServer(workdir / f"{name}-redis")
        seeded, *_ = await asyncio.gather(asyncio.to_thread(seed_history, history), triton.start(), redis.start())
        stack.push_async_callback(triton.stop)
        stack.push_async_callback(redis.stop)
        if online:
            await write_online(redis.url, seeded.logged)
        # spawn: a forked child would inherit the parent's event loop and gRPC state.
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(PROCESSES))
        width = input_width((model_repository() / MODEL / "config.pbtxt").read_text())
        yield Servers(
            triton,
            redis,
            seeded,
            Measure(triton, pool, width, duration),
            PredictMeasure(triton, pool, seeded, duration),
        )


async def run(bootstrap: str, workdir: Path, quick: bool) -> list[Row]:
    async with servers(workdir, 50_000 if quick else 100_000, 2.0 if quick else 6.0) as bench:
        triton, redis, seeded, direct, predict = bench.triton, bench.redis, bench.seeded, bench.direct, bench.predict
        prefix = await fresh_catalogue(bootstrap)
        rows: list[Row] = []
        with (
            inference_process(
                "kestrel-inference", bootstrap, prefix, redis.url, triton.grpc_url, workdir / "inference-api.log"
            ) as service,
            floor_process(workdir / "inference-floor.log") as floor,
        ):
            await wait_serving(service)
            await wait_serving(floor)
            results: dict[int, tuple[Result, PredictResult, PredictResult | None]] = {}
            for c in CONCURRENCY:  # each Predict phase right after its baseline: noise hits both alike
                results[c] = (
                    await direct(Phase(MODEL, c, processes=min(PROCESSES, c))),
                    await predict(service, c),
                    await predict(floor, c) if c in FLOOR_AT else None,
                )
            direct_batch = await direct(Phase(MODEL, BATCH_INFLIGHT, rows=BATCH_CALL))
            batch = await predict(service, BATCH_INFLIGHT, per_call=BATCH_CALL)
            if not service.alive():
                raise RuntimeError(f"kestrel-inference exited during the run; see {service.log_path}")
        log = service.log_summary()
        api = ("kestrel-inference", bootstrap, prefix, redis.url, triton.grpc_url, workdir / "inference-workers.log")
        with inference_process(*api, workers=str(WORKERS)) as workers:  # worker i's metrics: METRICS_PORT + i
            await wait_serving(workers)
            scaled = await predict(workers, WORKERS_AT)
        seeding = (
            f"online store: {len(seeded.vectors):,} cards, each with the vector the features service's "
            f"FeatureComputer gives after its newest of {seeded.events:,} simulator events over the past "
            f"24 h and the event log of all of them; requests follow the simulator's card activity; "
        )
        for c, (d, p, f) in results.items():
            rows.append(direct_row(direct_name(c), d))
            rows.append(predict_row(predict_name(c), p, direct_name(c), lead=seeding if c == CONCURRENCY[0] else ""))
            if f is not None:
                rows.append(floor_row(c, f))
            if c == WORKERS_AT:
                name = f"gRPC Predict, {WORKERS} worker processes (WORKERS), concurrency {c}"
                rows.append(predict_row(name, scaled, direct_name(c), lead="metrics of worker 0 only; "))
        rows.append(direct_row(DIRECT_BATCH, direct_batch))
        rows.append(
            predict_row(
                f"gRPC PredictBatch, {BATCH_CALL} events/call, {BATCH_INFLIGHT} calls in flight",
                batch,
                DIRECT_BATCH,
                log=log or "clean",
            )
        )
        rows += (await stream_rows(bootstrap, workdir, quick, triton, redis.url, seeded, direct))[0]
    for row in rows:
        if row.name.startswith(("gRPC Predict, concurrency", "gRPC floor", "stream scorer")):
            row.notes += f"; {NOISE}"
    return rows


async def stream_rows(
    bootstrap: str,
    workdir: Path,
    quick: bool,
    triton: TritonServer,
    redis_url: str,
    seeded: Seeded,
    direct: Measure,
    profile: Path | None = None,
) -> tuple[list[Row], str]:
    """Triton's own rate at the scorer's request size, then the scorer, in that order (same noise); and the
    features topic the scorer drained (left filled)."""
    n = stream_size(quick)
    direct_stream = await direct(Phase(MODEL, STREAM_INFLIGHT, rows=STREAM_ROWS))
    log_path = workdir / "inference-scorer.log"
    stream = await stream_run(bootstrap, triton, redis_url, seeded, n, log_path, profile=profile)
    rows = [direct_row(DIRECT_STREAM, direct_stream), stream_row(stream, n, len(seeded.vectors), direct_stream)]
    return rows, stream.topic


def stream_size(quick: bool) -> int:
    return 50_000 if quick else 200_000


async def run_stream(bootstrap: str, workdir: Path, quick: bool, profile: Path | None = None) -> list[Row]:
    """The stream scorer rows alone (`--only stream-scorer`): its baseline and the scorer, nothing of Predict."""
    async with servers(workdir, 20_000 if quick else 50_000, 2.0 if quick else 6.0, online=False) as b:
        rows, topic = await stream_rows(bootstrap, workdir, quick, b.triton, b.redis.url, b.seeded, b.direct, profile)
    rows[-1].notes += f"; {NOISE}"
    return rows + await consume.rows(bootstrap, topic, stream_size(quick), SCORER_BATCH)


if __name__ == "__main__" and sys.argv[1:2] == ["floor"]:
    asyncio.run(serve_floor(int(sys.argv[2])))
