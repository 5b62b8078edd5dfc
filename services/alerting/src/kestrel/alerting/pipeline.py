"""The faust agents and timers: drift reports -> signals -> alert states -> alert groups -> notifications.

Every step is idempotent, because faust-streaming replays records after a rebalance (faust#502) and after a
crash (offsets are committed every few seconds): a signal or tick re-evaluated against the state it already
produced changes nothing, a group update overwrites an alert with the same state, and a replayed flush
computes the same notification id, which the log already holds. Time comes from the records (`at_ms`), not
the clock of whoever replays them. Timers never write tables (faust allows that only inside a stream): they
put tick and flush marks on the partitions this replica owns, and the agents act on those in order with the
data, so a mark and an update of the same group never race."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust
import structlog

from kestrel.alerting import evaluation, groups, notifylog
from kestrel.alerting.channels import Channels
from kestrel.alerting.config import Config
from kestrel.alerting.metrics import EVALUATION_SECONDS, FIRING, NOTIFICATIONS, REJECTED, REPLAYED, SIGNALS
from kestrel.alerting.payload import fingerprint
from kestrel.alerting.routing import Notification, Silence, flush_due, flushed
from kestrel.alerting.rules import AlertState, drift_signals, evaluate, expired, tick
from kestrel.alerting.settings import AlertingSettings
from kestrel.alerting.table_views import AlertStates, firing_count, group_partition, states_of
from kestrel.common.errors import SerializationError
from kestrel.common.runtime.faust_app import durable

log = structlog.get_logger()

_MARK = "~mark"
"""Key of tick and flush marks (sent to an explicit partition, so the key only names them)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Pipeline:
    def __init__(
        self,
        app: faust.App,
        channels: Channels,
        config: Config,
        settings: AlertingSettings,
        delivery: Any,
        decode: Callable[[bytes], Mapping[str, Any]],
        reject: Callable[[Any, str], Any],
        platform: Any,
    ) -> None:
        self.app, self.ch, self.config, self.s = app, channels, config, settings
        self.delivery, self.decode, self.reject, self.platform = delivery, decode, reject, platform

    def register(self) -> None:
        self.app.agent(self.ch.drift_reports, name="drift-reports")(self.drift_reports)
        self.app.agent(self.ch.signals, name="evaluate")(self.evaluate)
        self.app.agent(self.ch.groups, name="notify")(self.notify)
        self.app.timer(self.s.tick_interval_s, name="marks")(self.marks)
        # The leader (owner of faust's one-partition leader topic) alone reads the broker for platform signals.
        self.app.timer(self.s.signals_interval_s, on_leader=True, name="platform-signals")(self.platform_signals)

    async def drift_reports(self, stream: Any) -> None:
        async for event in stream.events():
            try:
                report = self.decode(event.value)
            except SerializationError as exc:  # a record we cannot read is dead-lettered, never stops the stream
                REJECTED.inc()
                await self.reject(event.message, f"{type(exc).__name__}: {exc}")
                continue
            await self._signals(drift_signals(report, self.config.report_url))

    async def platform_signals(self, _app: Any) -> None:
        await self._signals(await self.platform.sample(now_ms()))

    async def marks(self, _app: Any) -> None:
        """A tick for each owned signals partition, a flush mark for each owned groups partition."""
        at = json.dumps({"kind": "mark", "at_ms": now_ms()})
        FIRING.set(firing_count(self.ch.alerts))
        for tp in self.app.assignor.assigned_actives():
            if tp.topic in (self.ch.signals.get_topic_name(), self.ch.groups.get_topic_name()):
                topic = self.ch.signals if tp.topic == self.ch.signals.get_topic_name() else self.ch.groups
                await self._send(topic, _MARK, at, partition=tp.partition)

    async def evaluate(self, stream: Any) -> None:
        async for event in stream.events():
            record, partition = json.loads(event.value), event.message.partition
            started = time.perf_counter()
            if record["kind"] == "mark":
                self._forget_expired(partition, record["at_ms"])
                new = tick(self.config.rules, states_of(self.ch.alerts, partition), record["at_ms"])
            else:
                SIGNALS.labels(record["signal"].get("source", "unknown")).inc()
                new = evaluate(
                    self.config.rules, record["signal"], AlertStates(self.ch.alerts), record["signal"]["at_ms"]
                )
            EVALUATION_SECONDS.labels(record["kind"]).observe(time.perf_counter() - started)
            await self._apply(new, partition, record.get("at_ms") or record["signal"]["at_ms"])

    async def notify(self, stream: Any) -> None:
        async for event in stream.events():
            record, partition = json.loads(event.value), event.message.partition
            if record["kind"] == "mark":
                await self._flush_partition(partition, record["at_ms"])
            else:
                self._update_group(event.key, record, partition)

    def _forget_expired(self, partition: int, at_ms: int) -> None:
        for state in states_of(self.ch.alerts, partition).values():
            if expired(state, at_ms):
                del self.ch.alerts[state.fingerprint]

    async def _apply(self, new: list[AlertState], partition: int, at_ms: int) -> None:
        old = AlertStates(self.ch.alerts)
        for state in evaluation.changed(new, old):
            previous = old.get(state.fingerprint)
            self.ch.alerts[state.fingerprint] = json.dumps({"p": partition, "state": state.to_json()})
            self._track_firing(state)
            if evaluation.notifiable(state, previous):
                for key in evaluation.group_keys(self.config, state.labels):
                    route = groups.route_json(key)
                    update = {"kind": "alert", "alert": state.to_json(), "route": route, "at_ms": at_ms}
                    await self._send(self.ch.groups, key.key(), json.dumps(update))

    def _track_firing(self, state: AlertState) -> None:
        if state.state == "firing":
            self.ch.firing[state.fingerprint] = json.dumps(state.labels)
        elif state.fingerprint in self.ch.firing:
            del self.ch.firing[state.fingerprint]

    def _update_group(self, key: str, record: dict[str, Any], partition: int) -> None:
        entry = self.ch.group_table.get(key)
        alert = AlertState.from_json(record["alert"])
        updated = groups.with_alert(
            json.loads(entry) if entry else None, record["route"], alert, partition, record["at_ms"]
        )
        self.ch.group_table[key] = json.dumps(updated)

    async def _flush_partition(self, partition: int, at_ms: int) -> None:
        owned = [(k, v) for k, v in list(self.ch.group_table.items()) if group_partition(v) == partition]
        if not owned:
            return
        muting = (
            self._firing(),
            self._silences(),
        )  # read once per pass, not once per group: O(groups), not O(groups^2)
        for key, text in owned:
            await self._flush_group(key, json.loads(text), at_ms, muting)

    async def _flush_group(
        self, key: str, entry: groups.Entry, at_ms: int, muting: tuple[list[dict[str, str]], list[Silence]]
    ) -> None:
        """Send what an earlier run logged but did not send; then, if the group is due, log the notification,
        store the group's new state, wait for both to be on the broker, send, and mark it sent."""
        for pending in notifylog.unsent(self._log(key)):
            REPLAYED.inc()
            await self._deliver(key, pending)
        members = groups.alerts(entry)
        opts = (
            evaluation.route_opts(self.config, groups.route_key(entry["route"]), members[0].labels) if members else None
        )
        if opts is None:  # no alerts left, or its route is gone from the config
            del self.ch.group_table[key]
            return
        group = groups.group_state(entry)
        firing, silences = muting
        shown = groups.visible(members, firing, self.config, silences, at_ms)
        after = flushed(group, opts, shown, at_ms)
        if after == group:  # not due; a replayed flush mark lands here too
            return
        notification = flush_due(group, opts, shown, at_ms)
        fresh = notification is not None and not notifylog.logged(self._log(key), notification.id)
        if notification is not None and fresh:
            self.ch.log[key] = json.dumps(notifylog.record(self._log(key), notification, self.s.notification_log_keep))
        self.ch.group_table[key] = json.dumps(groups.after_flush(entry, after))
        if notification is not None and fresh:
            await durable(self.app)  # the log entry and the group state are on the broker before anything is sent
            await self._deliver(key, notification)

    async def _deliver(self, key: str, notification: Notification) -> None:
        result = await self.delivery.deliver(notification)
        for outcome in _outcomes(result):
            NOTIFICATIONS.labels(notification.receiver, outcome).inc()
        self.ch.log[key] = json.dumps(notifylog.mark_sent(self._log(key), notification.id))
        await durable(self.app)
        log.info(
            "notified",
            group=key,
            notification=notification.id,
            status=notification.status,
            alerts=len(notification.alerts),
            outcomes=_outcomes(result),
        )

    def _log(self, key: str) -> notifylog.Log:
        text = self.ch.log.get(key)
        return json.loads(text) if text else notifylog.empty()

    def _firing(self) -> list[dict[str, str]]:
        return [json.loads(v) for v in self.ch.firing.values()]

    def _silences(self) -> list[Silence]:
        return [Silence.from_json(v) for v in self.ch.silences.values() if v]

    async def _signals(self, signals: Iterable[Mapping[str, Any]]) -> None:
        """All sent, then all acknowledged: one round trip for a report's signals, not one per signal."""
        pending = [
            await self.ch.signals.send(
                key=fingerprint(signal["labels"]), value=json.dumps({"kind": "signal", "signal": signal}), force=True
            )
            for signal in signals
        ]
        for sent in pending:
            await sent

    async def _send(self, topic: Any, key: str, value: str, partition: int | None = None) -> None:
        """Sent now and acknowledged (not attached to the current event): what follows may rely on it."""
        sent = await topic.send(key=key, value=value, partition=partition, force=True)
        await sent


def _outcomes(result: Any) -> list[str]:
    """What a delivery result says happened: sent, failed, and fallback when a fallback receiver took it."""
    outcomes = ["sent" if getattr(result, "ok", True) else "failed"]
    return [*outcomes, "fallback"] if getattr(result, "fallback", None) else outcomes
