"""The faust agents and timer that drive runs: alerts and manual requests -> the steps topic, keyed by model ->
the runs table (one partition owner per model, so one replica alone runs a model's retraining).

Only the steps agent writes the table, in order with the step records: a trigger, the end of a piece of work
(the job, the load, the shadow measurement, each run as a task beside the consumer, which puts its result
on the steps topic), or a mark. Timers never write tables (faust allows that only inside a stream): they put
marks on the steps partitions this replica owns, and a mark resumes what its models wait for: a lifecycle
outbox not yet published, work no task of this replica does (after a rebalance or a restart), the end of a
shadow window. Replays are harmless: steps.advance checks the run id and step, a trigger's run id is derived
from the trigger, and the effects skip what the registry's audit trail already holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
import structlog

from kestrel.common.errors import SerializationError
from kestrel.common.runtime.faust_app import durable
from kestrel.retrain_trigger import steps, work
from kestrel.retrain_trigger.effects import Effects
from kestrel.retrain_trigger.metrics import DECISIONS, LIFECYCLE, WORK_FAILED
from kestrel.retrain_trigger.policy import MANUAL, model_of
from kestrel.retrain_trigger.runs import DONE, Run
from kestrel.retrain_trigger.settings import RetrainTriggerSettings

log = structlog.get_logger()

_TEXT: dict[str, Any] = {"key_type": str, "value_type": str, "key_serializer": "raw", "value_serializer": "raw"}
_RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
_MARK = "~mark"
RETRY_S = 10.0
"""Work that raised is started again at a mark at most this often."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Driver:
    def __init__(
        self,
        s: RetrainTriggerSettings,
        effects: Effects,
        triton: Any,
        pool: Any,
        decode: Mapping[str, Callable[[bytes], Mapping[str, Any]]],
        reject: Callable[[Any, str], Awaitable[None]],
    ) -> None:
        self.s, self.effects, self.triton, self.pool = s, effects, triton, pool
        self.decode, self.reject = decode, reject
        self.policy = s.policy()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.failed_at: dict[str, float] = {}

    def declare(self, app: faust.App, alerts: str, lifecycle: str) -> None:
        self.app = app
        self.steps = app.topic(f"{app.conf.id}-steps", partitions=self.s.partitions, internal=True, **_TEXT)
        self.runs = app.Table("runs", partitions=self.s.partitions, schema=faust.Schema(**_TEXT))
        app.agent(app.topic(alerts, **_RAW), name="alerts")(self.on_alerts)
        app.agent(app.topic(lifecycle, **_RAW), name="lifecycle")(self.on_lifecycle)
        app.agent(self.steps, name="steps")(self.on_steps)
        app.timer(self.s.tick_interval_s, name="marks")(self.marks)

    async def on_alerts(self, stream: Any) -> None:
        async for event in stream.events():
            alert = await self._decoded("alerts", event)
            model = model_of(alert) if alert is not None else None
            if alert is not None and model is not None and self._fresh(event):
                await self._send(model, {"kind": "alert", "trigger": alert, "key": alert["alert_id"]})

    async def on_lifecycle(self, stream: Any) -> None:
        async for event in stream.events():
            record = await self._decoded("lifecycle", event)
            if record is not None and record["stage"] == MANUAL and self._fresh(event):
                key = f"{record['at']}:{record.get('reason')}"
                await self._send(record["model_name"], {"kind": "manual", "trigger": record, "key": key})

    async def on_steps(self, stream: Any) -> None:
        async for event in stream.events():
            record, partition = json.loads(event.value), event.message.partition
            if record["kind"] == "mark":
                await self._mark(partition, record["at_ms"])
            elif record["kind"] in ("alert", "manual"):
                await self._trigger(event.key, record, partition)
            else:
                entry = self._entry(event.key, partition)
                outcome = steps.advance(
                    entry, record, shadow_s=self.s.shadow_s, tolerance=self.s.shadow_tolerance, now_ms=now_ms()
                )
                if outcome.entry != entry:
                    await self._store(event.key, outcome)

    async def marks(self, _app: Any) -> None:
        at = json.dumps({"kind": "mark", "at_ms": now_ms()})
        for tp in self.app.assignor.assigned_actives():
            if tp.topic == self.steps.get_topic_name():
                sent = await self.steps.send(key=_MARK, value=at, partition=tp.partition, force=True)
                await sent

    async def _trigger(self, model: str, record: dict[str, Any], partition: int) -> None:
        trigger = record["trigger"]
        try:
            new_labels = None if record["kind"] == "manual" else await self.effects.new_labels(model)
        except Exception as exc:  # noqa: BLE001 - database down: the alert cannot be judged, and starts nothing
            log.warning("retrain.decision", model=model, start=False, reason=f"labels not counted: {exc}")
            return
        entry = self._entry(model, partition)
        outcome = steps.trigger(
            entry, model, trigger, record["key"], self.policy, new_labels=new_labels, now_ms=now_ms()
        )
        assert outcome.decision is not None
        DECISIONS.labels(model, "started" if outcome.decision.start else "refused").inc()
        log.info("retrain.decision", model=model, start=outcome.decision.start, reason=outcome.decision.reason)
        if outcome.entry != entry:
            await self._store(model, outcome)

    async def _mark(self, partition: int, at_ms: int) -> None:
        for model, text in list(self.runs.items()):
            entry = steps.Entry.from_json(json.loads(text))
            if entry.partition != partition:
                continue
            if entry.outbox:
                await self._publish(model, entry)
            due = steps.due(entry, at_ms)
            if due is not None and entry.run is not None:
                self._launch(due, entry.run)

    async def _store(self, model: str, outcome: steps.Outcome) -> None:
        """The entry (with its outbox) on the broker first, then the records published, then the outbox cleared:
        a crash in between leaves the outbox for the next mark, never a step without its records."""
        self.runs[model] = json.dumps(outcome.entry.to_json())
        if outcome.entry.run is not None and outcome.entry.run.step == DONE:
            self._forget(outcome.entry.run.run_id)
        await durable(self.app)
        await self._publish(model, outcome.entry)
        if outcome.start is not None and outcome.entry.run is not None:
            self._launch(outcome.start, outcome.entry.run)

    async def _publish(self, model: str, entry: steps.Entry) -> None:
        try:
            await self.effects.publish(entry.outbox)
        except Exception as exc:  # noqa: BLE001 - Kafka or PostgreSQL down: the outbox stays for the next mark
            log.warning("retrain.publish.failed", model=model, error=str(exc))
            return
        for record in entry.outbox:
            LIFECYCLE.labels(record["stage"]).inc()
            log.info(
                "retrain.step", model=model, stage=record["stage"], version=record["version"], reason=record["reason"]
            )
        self.runs[model] = json.dumps(steps.published(entry).to_json())

    def _launch(self, kind: str, run: Run) -> None:
        key = f"{run.run_id}:{kind}"
        task, failed = self.tasks.get(key), self.failed_at.get(key)
        if task is not None and (not task.done() or failed is None or time.monotonic() - failed < RETRY_S):
            return  # running, finished (its step record is on the steps topic), or failed a moment ago
        self.failed_at.pop(key, None)
        self.tasks[key] = asyncio.create_task(self._work(key, kind, run), name=f"retrain-{key}")

    async def cancel(self) -> None:
        """At stop: work in progress ends here (a job's process is killed); the next owner starts it again."""
        running = [t for t in self.tasks.values() if not t.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _work(self, key: str, kind: str, run: Run) -> None:
        try:
            if kind == steps.JOB:
                result = await work.train(self.s, run)
            elif kind == steps.LOAD:
                result = await work.load(self.s, self.triton, run)
            else:
                result = await work.measure(self.s, self.pool, run, now_ms())
            await self._send(run.model_name, result)
        except Exception as exc:  # noqa: BLE001 - the run waits; a later mark starts the work again
            WORK_FAILED.labels(kind).inc()
            self.failed_at[key] = time.monotonic()
            log.warning("retrain.work.failed", run_id=run.run_id, work=kind, error=str(exc))

    def _forget(self, run_id: str) -> None:
        for key in [k for k in self.tasks if k.startswith(f"{run_id}:")]:
            self.tasks.pop(key)
            self.failed_at.pop(key, None)

    def _entry(self, model: str, partition: int) -> steps.Entry:
        text = self.runs.get(model)
        return steps.Entry.from_json(json.loads(text)) if text else steps.Entry(partition)

    def _fresh(self, event: Any) -> bool:
        """Written recently (the record's broker timestamp): not history that a new consumer group reads again.
        Not the alert's starts_at: an alert still firing after the cooldown may retrain again."""
        return time.time() - event.message.timestamp <= self.s.trigger_max_age_s

    async def _decoded(self, source: str, event: Any) -> dict[str, Any] | None:
        try:
            return dict(self.decode[source](event.value))
        except SerializationError as exc:  # a record we cannot read is dead-lettered, never stops the stream
            await self.reject(event.message, f"{type(exc).__name__}: {exc}")
            return None

    async def _send(self, model: str, record: dict[str, Any]) -> None:
        sent = await self.steps.send(key=model, value=json.dumps(record), force=True)
        await sent
