"""One simulator run: generator, clock, pacer and sinks wired together; `run(config)` is the entry point."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Literal

import structlog

from kestrel.common.settings import load_settings
from kestrel.simulator.generator import Batch, Generator, GeneratorConfig
from kestrel.simulator.pacer import TokenBucket
from kestrel.simulator.population import natural_rate
from kestrel.simulator.progress import Mode, Progress
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.sinks import JsonlSink, NullSink, Sink
from kestrel.simulator.summary import Summary

log = structlog.get_logger()

Target = Literal["kafka", "ingest", "null", "jsonl"]
_DEFAULT_SIM_SPAN_S = 30 * 86_400


@dataclass
class RunConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    to: Target = "kafka"
    rate: float = 1000.0
    """Target events per wall-clock second; 0 sends as fast as possible."""
    duration_s: float | None = None
    count: int | None = None
    """Stop after this many events; with neither count nor duration the run lasts until stopped."""
    clock: Literal["wall", "sim"] = "wall"
    """wall: event times are now. sim: simulated time at the population's own pace (datasets, backfills)."""
    start_ms: int | None = None
    """Sim clock only: first event time; by default chosen so the run ends at about now."""
    sim_rate: float | None = None
    """Sim clock only: events per simulated second; default: the cards' natural payment rate."""
    labels: bool = True
    drain_labels: bool = True
    """At the end, send labels still waiting for their delay (their label_time may be ahead of now)."""
    progress: Mode = "auto"
    ingest_addr: str | None = None
    output: str | None = None
    """jsonl only: file to write; default stdout."""
    settings: SimulatorSettings | None = None
    """Connection settings; read from the environment (KESTREL_SIM_*) when not given."""


class _Clock:
    """Hands the generator the end time of each batch."""

    def __init__(self, config: RunConfig, start_ms: int, sim_rate: float) -> None:
        self._sim = config.clock == "sim"
        self._t, self._ms_per_event = float(start_ms), 1000.0 / sim_rate

    def advance(self, n: int) -> int:
        if not self._sim:
            return int(time.time() * 1000)
        self._t += n * self._ms_per_event
        return int(self._t)


def _start_ms(config: RunConfig, sim_rate: float) -> int:
    now_ms = int(time.time() * 1000)
    if config.clock == "wall":
        return now_ms
    if config.start_ms is not None:
        return config.start_ms
    if config.count is not None:
        span_s = config.count / sim_rate
    elif config.duration_s is not None and config.rate > 0:
        span_s = config.duration_s * config.rate / sim_rate
    else:
        span_s = _DEFAULT_SIM_SPAN_S
    return now_ms - int(span_s * 1000)


def _sinks(config: RunConfig, settings: SimulatorSettings) -> tuple[Sink, Sink | None]:
    """The events sink and the labels sink (the same object unless events go through ingest)."""
    if config.to == "kafka":
        from kestrel.simulator.sinks.kafka import KafkaSink

        sink = KafkaSink(settings, labels=config.labels)
        return sink, sink if config.labels else None
    if config.to == "ingest":
        # Imported here so the Kafka path works where the ingest package is not installed.
        from kestrel.simulator.sinks.ingest import IngestSink
        from kestrel.simulator.sinks.kafka import KafkaSink

        labels = KafkaSink(settings, events=False) if config.labels else None
        return IngestSink(settings, config.ingest_addr), labels
    if config.to == "null":
        null = NullSink()
        return null, null if config.labels else None
    if config.to == "jsonl":
        jsonl = JsonlSink(
            settings.topic_prefix + settings.events_topic, settings.topic_prefix + settings.labels_topic, config.output
        )
        return jsonl, jsonl if config.labels else None
    raise ValueError(f"unknown target {config.to!r}; choose kafka, ingest, null or jsonl")


class _Run:
    """State of one run; `snapshot()` merges generator tallies with what the sinks confirmed."""

    def __init__(self, config: RunConfig, generator: Generator, events: Sink, labels: Sink | None) -> None:
        self.config, self.generator = config, generator
        self.events, self.labels = events, labels
        self.tally = Summary()
        self.started = time.monotonic()
        self.ended: float | None = None
        """When the last event was handed over: draining labels afterwards must not dilute the rate."""

    def add(self, batch: Batch) -> None:
        t = self.tally
        t.generated += len(batch.events)
        t.fraud += batch.fraud
        t.invalid += batch.invalid
        t.patterns.update(batch.patterns)
        self.add_labels(batch.labels, batch.fraud_labels)
        if batch.events:
            t.first_event_ms = t.first_event_ms or batch.events[0]["event_time"]
            t.last_event_ms = batch.events[-1]["event_time"]

    def add_labels(self, labels: list[dict[str, object]], fraud_labels: int) -> None:
        self.tally.labels_generated += len(labels)
        self.tally.fraud_labels += fraud_labels

    def snapshot(self) -> Summary:
        stats = self.events.events
        s = replace(
            self.tally,
            patterns=Counter(self.tally.patterns),
            rejections=Counter(stats.rejections),
            elapsed_s=(self.ended or time.monotonic()) - self.started,
        )
        s.sent, s.rejected, s.failed = stats.accepted, stats.rejected, stats.failed
        if self.labels is not None:
            s.labels_sent, s.labels_failed = self.labels.labels.accepted, self.labels.labels.failed
        progress = self.generator.drift_progress()
        s.drift = f"{self.config.generator.scenario} {progress:.0%}" if progress > 0 else ""
        return s

    def done(self, stop: asyncio.Event | None, deadline: float) -> bool:
        count = self.config.count
        return (
            (stop is not None and stop.is_set())
            or time.monotonic() >= deadline
            or (count is not None and self.tally.generated >= count)
        )


async def run(config: RunConfig, stop: asyncio.Event | None = None) -> Summary:
    """Generate and send traffic until the count, the duration or `stop`; returns what happened."""
    settings = config.settings or load_settings(SimulatorSettings)
    sim_rate = config.sim_rate or natural_rate(config.generator.cards)
    start_ms = _start_ms(config, sim_rate)
    # Building a large population takes seconds of numpy: keep the event loop responsive meanwhile.
    generator_config = config.generator if config.labels else replace(config.generator, labels=False)
    generator = await asyncio.to_thread(Generator, generator_config, start_ms)
    events_sink, labels_sink = _sinks(config, settings)
    sinks = [events_sink] + ([labels_sink] if labels_sink not in (None, events_sink) else [])
    state = _Run(config, generator, events_sink, labels_sink)
    started: list[Sink] = []
    progress = Progress(state.snapshot, config.progress)
    try:
        for sink in sinks:
            await sink.start()
            started.append(sink)
        if config.clock == "wall":
            generator.rebase(int(time.time() * 1000))
        state.started = time.monotonic()
        log.info(
            "sim_started",
            to=config.to,
            rate=config.rate,
            clock=config.clock,
            cards=config.generator.cards,
            seed=config.generator.seed,
            run_id=config.generator.run_id,
            scenario=config.generator.scenario,
            fraud_rate=config.generator.fraud_rate,
        )
        progress.start()
        await _pump(state, _Clock(config, start_ms, sim_rate), stop)
    finally:
        await _close(started, progress)
    summary = state.snapshot()
    log.info("sim_finished", **summary.as_log())
    return summary


async def _close(sinks: list[Sink], progress: Progress) -> None:
    """Close every sink even if one fails (each holds a producer thread or a channel), then report."""
    errors: list[BaseException] = []
    for sink in sinks:
        try:
            await sink.close()
        except Exception as exc:  # noqa: BLE001 - re-raised below once the rest are closed
            errors.append(exc)
    await progress.stop()
    if errors:
        raise errors[0]


async def _pump(state: _Run, clock: _Clock, stop: asyncio.Event | None) -> None:
    config, generator = state.config, state.generator
    pacer = TokenBucket(config.rate)
    deadline = time.monotonic() + (config.duration_s if config.duration_s is not None else float("inf"))
    while not state.done(stop, deadline):
        limit = None if config.count is None else config.count - state.tally.generated
        n = await pacer.take(limit)
        batch = generator.step(n, clock.advance(n))
        await state.events.send_events(batch.events)
        if state.labels is not None:
            await state.labels.send_labels(batch.labels)
        state.add(batch)
    state.ended = time.monotonic()
    if config.drain_labels and state.labels is not None:
        rest = generator.drain_labels()
        await state.labels.send_labels(rest)
        state.add_labels(rest, sum(label["label"] for label in rest))
