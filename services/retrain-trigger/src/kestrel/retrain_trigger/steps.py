"""What the service does with each record on its steps topic, for one model: pure. The model's entry in the runs
table (its Run, and the lifecycle records not yet published: the outbox) and a record in; the new entry, the
records to publish and the work to start out. Every step checks the run id and the step it expects, so a
replayed record (faust replays after a rebalance) finds its step done and changes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kestrel.retrain_trigger import runs
from kestrel.retrain_trigger.policy import MANUAL, Decision, RetrainPolicy, decide

JOB, LOAD, MEASURE = "job", "load", "measure"
"""Work that runs beside the consumer (the training job, the Triton load, the shadow window's measurement); each
ends in a step record (job_done/job_failed, loaded/load_failed, measured)."""

WORK_FOR = {runs.TRAINING: JOB, runs.LOADING: LOAD}


@dataclass(frozen=True)
class Entry:
    """One model's value in the runs table."""

    partition: int
    """The steps partition the model's records arrive on (marks of that partition resume its work)."""
    run: runs.Run | None = None
    outbox: tuple[dict[str, Any], ...] = ()
    """Lifecycle records of the last step, published (and audited) after the entry is stored, then cleared."""

    def to_json(self) -> dict[str, Any]:
        return {"p": self.partition, "run": self.run.to_json() if self.run else None, "outbox": list(self.outbox)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Entry:
        run = runs.Run.from_json(dict(doc["run"])) if doc.get("run") else None
        return cls(doc["p"], run, tuple(doc.get("outbox") or ()))


@dataclass(frozen=True)
class Outcome:
    entry: Entry
    start: str | None = None
    """JOB, LOAD or MEASURE: work to start for entry.run."""
    decision: Decision | None = None
    """For a trigger: whether it started a run, and why not."""
    records: list[dict[str, Any]] = field(default_factory=list)


def run_id(model_name: str, trigger_key: str) -> str:
    """Deterministic: the same trigger read twice names the same run."""
    return hashlib.sha256(f"{model_name}\0{trigger_key}".encode()).hexdigest()[:12]


def trigger(
    entry: Entry,
    model_name: str,
    record: Mapping[str, Any],
    key: str,
    policy: RetrainPolicy,
    *,
    new_labels: int | None,
    now_ms: int,
) -> Outcome:
    """An alert or a manual request (record: the alert, or the lifecycle record of stage MANUAL)."""
    run = entry.run
    rid = run_id(model_name, key)
    if run is not None and run.run_id == rid:
        return Outcome(entry, decision=Decision(False, f"run {rid} already started by this trigger"))
    running = run.run_id if run is not None and run.step != runs.DONE else None
    last = run.started_ms if run is not None else None
    decision = decide(policy, record, running=running, last_started_ms=last, new_labels=new_labels, now_ms=now_ms)
    if not decision.start:
        return Outcome(entry, decision=decision)
    reason = (record.get("reason") or MANUAL) if record.get("stage") == MANUAL else _alert_reason(record)
    started, records = runs.start(rid, model_name, str(reason), now_ms)
    return _stored(entry, started, records, JOB, decision)


def advance(entry: Entry, record: Mapping[str, Any], *, shadow_s: float, tolerance: float, now_ms: int) -> Outcome:
    """A step record about the entry's run: job_done, job_failed, loaded, load_failed, measured."""
    run, kind = entry.run, record["kind"]
    expected = {"job_done": runs.TRAINING, "job_failed": runs.TRAINING, "loaded": runs.LOADING}
    expected |= {"load_failed": runs.LOADING, "measured": runs.SHADOWING}
    if run is None or run.run_id != record.get("run_id") or run.step != expected.get(kind):
        return Outcome(entry)  # a replay, or a late answer about a run that moved on
    if kind == "job_done":
        after, records = runs.job_done(run, record["outcome"], now_ms)
        return _stored(entry, after, records, LOAD if after.step == runs.LOADING else None)
    if kind == "loaded":
        return _stored(entry, *runs.loaded(run, shadow_s, now_ms))
    if kind == "measured":
        holdout = (run.holdout or {}) | record.get("holdout_estimated", {})
        verdict = runs.judge_shadow(holdout, record["live"], tolerance, record.get("champion_live"))
        return _stored(entry, *runs.shadow_over(run, verdict, now_ms, **shadow_metrics(record)))
    return _stored(entry, *runs.failed(run, record["reason"], now_ms))


def due(entry: Entry, at_ms: int) -> str | None:
    """At a mark: the work the run waits for (resumed when no task of this replica does it)."""
    run = entry.run
    if run is None:
        return None
    if run.step == runs.SHADOWING and run.shadow_until_ms is not None and at_ms >= run.shadow_until_ms:
        return MEASURE
    return WORK_FOR.get(run.step)


def shadow_metrics(measured: Mapping[str, Any]) -> dict[str, float]:
    """The challenger's live metrics, the champion's on the same labelled events, and how many there were."""
    live = {f"live_{k}": v for k, v in measured["live"].items()}
    champion = {f"champion_live_{k}": v for k, v in (measured.get("champion_live") or {}).items()}
    scored = {"shadow_scored": float(measured["scored"])} if "scored" in measured else {}
    return {**live, **champion, "shadow_labelled": float(measured.get("labelled", 0)), **scored}


def published(entry: Entry) -> Entry:
    return replace(entry, outbox=())


def _stored(
    entry: Entry,
    run: runs.Run,
    records: list[dict[str, Any]],
    start: str | None = None,
    decision: Decision | None = None,
) -> Outcome:
    return Outcome(replace(entry, run=run, outbox=(*entry.outbox, *records)), start, decision, records)


def _alert_reason(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    detail = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
    return f"alert {alert.get('name')} ({alert.get('severity')}) {detail}".strip()
