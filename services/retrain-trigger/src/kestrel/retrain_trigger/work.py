"""The work a run waits for, done beside the consumer: the training job as a subprocess (or whatever the job
command starts), the challenger's load into Triton, the shadow window measured from the prediction log. Each
ends in the step record that the service's agent then applies (steps.advance)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from kestrel.common.errors import KestrelError
from kestrel.model import metrics
from kestrel.model.artifact import load as load_artifact
from kestrel.model.errors import ModelError
from kestrel.prediction_logger import read
from kestrel.retrain_trigger import rollout
from kestrel.retrain_trigger.gate import scores_summary, stratified_resamples
from kestrel.retrain_trigger.runs import Run
from kestrel.retrain_trigger.settings import RetrainTriggerSettings


def job_command(s: RetrainTriggerSettings, run: Run) -> list[str]:
    extra = ["--model", run.model_name, "--hours", str(s.train_hours), "--reason", f"[{run.run_id}] {run.reason}"]
    return [*shlex.split(s.job_command), *extra, "--actor", "retrain-trigger"]


def job_result(run: Run, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The step record of a finished job: its JSON outcome (the last line that is one), or why it failed."""
    if returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()] or [f"exit status {returncode}"]
        return {"kind": "job_failed", "run_id": run.run_id, "reason": f"training job: {lines[-1].strip()}"}
    for line in reversed(stdout.splitlines()):
        try:
            outcome = json.loads(line)
        except ValueError:
            continue
        if isinstance(outcome, dict) and "passed" in outcome:
            return {"kind": "job_done", "run_id": run.run_id, "outcome": outcome}
    return {"kind": "job_failed", "run_id": run.run_id, "reason": "training job printed no outcome"}


async def train(s: RetrainTriggerSettings, run: Run) -> dict[str, Any]:
    """Runs the job to its end without blocking the consumer; killed after job_timeout_s."""
    env = {
        **os.environ,
        "KESTREL_RETRAIN_POSTGRES_DSN": s.postgres_dsn.get_secret_value(),
        "KESTREL_RETRAIN_ARTIFACTS_DIR": s.artifacts_dir,
        **s.job_env,
    }
    command = job_command(s, run)
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
    except OSError as exc:
        return {"kind": "job_failed", "run_id": run.run_id, "reason": f"training job {command[0]}: {exc}"}
    try:
        out, err = await asyncio.wait_for(proc.communicate(), s.job_timeout_s)
    except TimeoutError:
        await _kill(proc)
        return {"kind": "job_failed", "run_id": run.run_id, "reason": f"training job ran past {s.job_timeout_s:.0f} s"}
    except asyncio.CancelledError:  # the service stops: no orphan trains on; the next owner starts the job again
        await _kill(proc)
        raise
    return job_result(run, proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


async def _kill(proc: Any) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


def served_versions(run: Run) -> tuple[int, ...]:
    """The champion and the challenger, side by side (numeric versions: Triton's version folders)."""
    return tuple(sorted({int(v) for v in (run.champion, run.challenger) if v and v.isdigit()}))


async def load(s: RetrainTriggerSettings, triton: rollout.ModelControl, run: Run) -> dict[str, Any]:
    """Publishes the challenger into the repository (once: a resumed load finds it there) and serves it."""
    repository = Path(s.model_repository)
    try:
        if run.artifact is None:
            raise ModelError("the job's outcome names no artifact")
        if not (repository / run.model_name / str(run.challenger)).exists():
            await asyncio.to_thread(rollout.publish, Path(run.artifact), repository)
        await rollout.serve(triton, repository, run.model_name, served_versions(run))
    except (KestrelError, OSError) as exc:
        return {"kind": "load_failed", "run_id": run.run_id, "reason": f"load: {exc}"}
    return {"kind": "loaded", "run_id": run.run_id}


def live_metrics(
    labels: Sequence[int], scores: Sequence[float], threshold: float, min_labels: int, min_positives: int = 1
) -> dict[str, float]:
    """The challenger's metrics on its labelled shadow predictions: none with fewer than `min_labels` labels or
    `min_positives` frauds among them; precision and F1 only when it flagged at least `min_positives` of them.
    A handful of frauds makes these noise: a loop test run rejected a challenger on a precision of 0.43 over a
    few flagged payments, against 0.83 on its holdout."""
    y = np.asarray(labels, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    if y.size < min_labels or int(y.sum()) < max(min_positives, 1) or y.all():
        return {}
    found = scores_summary(y, values, threshold)
    if int((values >= threshold).sum()) < min_positives:
        found = {k: v for k, v in found.items() if k not in ("precision", "f1")}
    return found | {f"{k}_upper": v for k, v in upper_bounds(y, values, threshold, set(found)).items()}


def upper_bounds(
    y: np.ndarray, scores: np.ndarray, threshold: float, names: set[str], resamples: int = 400, confidence: float = 0.95
) -> dict[str, float]:
    """Each metric's upper confidence bound over a stratified bootstrap of the labelled shadow predictions: the
    verdict calls the challenger worse only when even this bound is below the holdout by the tolerance. On the
    60 or so frauds of a short shadow PR-AUC moves by about 0.1 between resamples (a loop test run rejected a
    challenger on a live PR-AUC of 0.365 against 0.54 on its holdout, well inside that noise). Seeded."""
    drawn: dict[str, list[float]] = {name: [] for name in names}
    for rows in stratified_resamples(y, resamples):
        for name, value in scores_summary(y[rows], scores[rows], threshold).items():
            if name in drawn:
                drawn[name].append(value)
    return {name: float(np.nanquantile(values, confidence)) for name, values in drawn.items() if values}


SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)


async def measure(s: RetrainTriggerSettings, pool: Any, run: Run, now_ms: int) -> dict[str, Any]:
    """The shadow so far: every prediction of the challenger (before its promotion it scores only in shadow; a
    window of event time would miss payments whose time is not when they were scored), with the labels known
    now, and the champion's predictions of the same events (for the record: the verdict holds the challenger
    to its holdout). Besides measured metrics, CBPE estimates from the challenger's calibration, which need no
    label: fraud labels come days later, after any shadow window."""
    assert run.challenger is not None
    async with pool.acquire() as conn:  # a database error ends the task; the next mark measures again
        end = datetime.fromtimestamp(now_ms / 1000 + 86_400, UTC)  # and event times a little ahead of the clock
        rows = await read.labelled_predictions(conn, run.model_name, run.challenger, SINCE_EVER, end)
        scores = await read.version_scores(conn, run.model_name, run.challenger, "shadow")
        champion = []
        if run.champion is not None and rows:
            first, last = rows[0].event_time, rows[-1].event_time + timedelta(milliseconds=1)
            champion = await read.labelled_predictions(conn, run.model_name, run.champion, first, last)
    events = {r.event_id for r in rows}
    same = [r for r in champion if r.event_id in events]
    live, holdout = estimates(run.artifact, scores, s.threshold, s.shadow_min_labels)
    return {
        "kind": "measured",
        "run_id": run.run_id,
        "live": _live(s, rows) | live,
        "holdout_estimated": holdout,
        "champion_live": _live(s, same),
        "labelled": len(rows),
        "scored": len(scores),
    }


def estimates(
    artifact: str | None, scores: Sequence[float], threshold: float, min_scores: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Estimated precision and recall (CBPE) of the challenger's shadow scores, and what the verdict holds them
    to: the estimated precision on its holdout (from its reference performance). None without a calibration
    or below `min_scores` scores. Recall is recorded, not judged: its estimate rests on the calibrated
    probabilities of the unflagged bulk, where a holdout holds few frauds (in the loop test, with about 40, it
    read 0.34 live against 0.49 on the holdout while the promoted model then measured PR-AUC 0.59-0.66 on the
    wave, above its holdout's 0.54)."""
    if artifact is None or len(scores) < min_scores:
        return {}, {}
    performance = load_artifact(Path(artifact)).reference.performance
    if performance is None:
        return {}, {}
    values = np.asarray(scores, dtype=np.float64)
    precision, recall = metrics.expected_precision_recall(performance.calibration(values), values >= threshold)
    pairs = (("estimated_precision", precision), ("estimated_recall", recall))
    both = [(k, v, performance.overall.get(k, np.nan)) for k, v in pairs]
    kept = [(k, v, ref) for k, v, ref in both if not (np.isnan(v) or np.isnan(ref))]  # nan: nothing flagged
    return {k: v for k, v, _ in kept}, {k: ref for k, _, ref in kept if k == "estimated_precision"}


def _live(s: RetrainTriggerSettings, rows: Sequence[Any]) -> dict[str, float]:
    labels, scores = [r.label for r in rows], [r.score for r in rows]
    return live_metrics(labels, scores, s.threshold, s.shadow_min_labels, s.shadow_min_positives)
