"""One retraining run of a model, step by step, and the lifecycle record of every step. Pure: the service keeps a
Run per model in its state (one partition owner per model) and does the I/O each step names."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

TRAINING, LOADING, SHADOWING, DONE = "training", "loading", "shadowing", "done"
"""A run's steps: the job runs; the challenger is published and loaded into Triton; it scores in shadow; over."""


@dataclass(frozen=True)
class Run:
    run_id: str
    model_name: str
    step: str
    reason: str
    """What started it (the alert, or a person's request)."""
    started_ms: int
    challenger: str | None = None
    champion: str | None = None
    holdout: dict[str, float] = field(default_factory=dict)
    """The challenger's holdout metrics (what the shadow window is held to)."""
    shadow_until_ms: int | None = None
    outcome: str | None = None
    """promoted, rejected or failed, once DONE."""
    artifact: str | None = None
    """The challenger's artifact folder (the job's outcome), published into Triton's repository by the load."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Run:
        return cls(**doc)


def lifecycle(run: Run, stage: str, version: str | None, at_ms: int, reason: str, **metrics: float) -> dict[str, Any]:
    """A kestrel.model-lifecycle.v1 record (schemas/model_lifecycle.avsc) of one step."""
    return {
        "model_name": run.model_name,
        "version": version or run.challenger or run.champion or "",
        "stage": stage,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "artifact_uri": None,
        "reason": f"[{run.run_id}] {reason}",
        "at": at_ms,
    }


def start(run_id: str, model_name: str, reason: str, now_ms: int) -> tuple[Run, list[dict[str, Any]]]:
    run = Run(run_id, model_name, TRAINING, reason, now_ms)
    return run, [lifecycle(run, "retrain_started", None, now_ms, reason)]


def job_done(run: Run, outcome: dict[str, Any], now_ms: int) -> tuple[Run, list[dict[str, Any]]]:
    """The job's outcome (kestrel-retrain-job's JSON line): passed -> LOADING, else rejected and DONE."""
    run = replace(
        run,
        challenger=str(outcome["version"]),
        champion=outcome.get("champion_version"),
        artifact=outcome.get("artifact"),
    )
    challenger = {f"challenger_{k}": v for k, v in outcome.get("challenger", {}).items()}
    champion = {f"champion_{k}": v for k, v in (outcome.get("champion") or {}).items()}
    records = [
        lifecycle(run, "evaluated", run.challenger, now_ms, "; ".join(outcome["reasons"]), **challenger, **champion)
    ]
    if not outcome["passed"]:
        done = replace(run, step=DONE, outcome="rejected")
        failing = "; ".join(r for r in outcome["reasons"] if " fails" in r) or "challenger not better"
        return done, [*records, lifecycle(done, "rejected", run.challenger, now_ms, f"gate: {failing}")]
    holdout = {k: float(v) for k, v in outcome.get("challenger", {}).items()}
    return replace(run, step=LOADING, holdout=holdout), records


def failed(run: Run, reason: str, now_ms: int) -> tuple[Run, list[dict[str, Any]]]:
    """Any step that could not be done (the job crashed, Triton refused the load): over; the champion stays."""
    done = replace(run, step=DONE, outcome="failed")
    return done, [lifecycle(done, "failed", run.challenger, now_ms, reason)]


def loaded(run: Run, shadow_s: float, now_ms: int) -> tuple[Run, list[dict[str, Any]]]:
    """Triton serves the challenger beside the champion: inference starts scoring it in shadow."""
    shadowing = replace(run, step=SHADOWING, shadow_until_ms=now_ms + int(shadow_s * 1000))
    return shadowing, [
        lifecycle(shadowing, "loaded", run.challenger, now_ms, "challenger served beside the champion"),
        lifecycle(shadowing, "shadow_started", run.challenger, now_ms, f"shadow for {shadow_s:.0f} s"),
    ]


@dataclass(frozen=True)
class ShadowVerdict:
    promote: bool
    reason: str


def judge_shadow(
    holdout: dict[str, float], live: dict[str, float], tolerance: float, champion_live: dict[str, float] | None = None
) -> ShadowVerdict:
    """The challenger's metrics on live traffic in the shadow window against its holdout metrics: worse by more
    than `tolerance` on any metric both have (pr_auc and the rest once labels are in; the estimated precision
    from its calibration before) rejects it. A measured metric comes with its upper confidence bound
    (`<metric>_upper`): it is worse only when that bound is. Worse than its holdout, it is still promoted when
    its live PR-AUC beats the champion's on the same labelled events (`champion_live`): traffic moved for both
    models, and the challenger is the better of the two on it (seen in the loop test: the new-country wave's
    24-hour features kept changing after the training window: live PR-AUC 0.30 against 0.64 on the holdout,
    and over the same hours the champion measured 0.20). With no live metric at all it is promoted on the
    holdout's word, and the reason says so."""
    common = sorted(m for m in set(holdout) & set(live) if not m.endswith("_upper"))
    if not common:
        return ShadowVerdict(
            True,
            "no live metric in the shadow window (no labels, too few predictions to estimate): promoted on the holdout",
        )

    def shown(m: str) -> str:
        bound = f" (95% upper bound {live[m + '_upper']:.4f})" if m + "_upper" in live else ""
        return f"{m} {live[m]:.4f}{bound} vs holdout {holdout[m]:.4f}"

    worse = [shown(m) for m in common if live.get(f"{m}_upper", live[m]) < holdout[m] - tolerance]
    if worse:
        said = f"worse live than on the holdout (tolerance {tolerance}): {'; '.join(worse)}"
        ours, theirs = live.get("pr_auc"), (champion_live or {}).get("pr_auc")
        if ours is not None and theirs is not None and ours > theirs:
            return ShadowVerdict(
                True, f"{said}; but better than the champion on the same events: {ours:.4f} vs {theirs:.4f}"
            )
        return ShadowVerdict(
            False, said + (f"; champion on the same events {theirs:.4f}" if theirs is not None else "")
        )
    return ShadowVerdict(True, f"live as good as the holdout: {'; '.join(shown(m) for m in common)}")


def shadow_over(run: Run, verdict: ShadowVerdict, now_ms: int, **metrics: float) -> tuple[Run, list[dict[str, Any]]]:
    """Promote the challenger (the alias moves; inference follows) or reject it (the shadow ends); `metrics`: what
    the shadow window measured, for the record."""
    stage = "promoted" if verdict.promote else "rejected"
    done = replace(run, step=DONE, outcome=stage)
    return done, [lifecycle(done, stage, run.challenger, now_ms, verdict.reason, **metrics)]


def rolled_back(model_name: str, version: str, reason: str, now_ms: int) -> dict[str, Any]:
    """The record a rollback publishes: inference answers with `version` again, at once."""
    return lifecycle(Run("rollback", model_name, DONE, reason, now_ms), "rolled_back", version, now_ms, reason)
