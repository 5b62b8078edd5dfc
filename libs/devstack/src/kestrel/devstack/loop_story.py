"""What the demo saw of the loop (drift reports, alerts, lifecycle records, first predictions of each version) and
what it says about it: the timeline's lines and the outcome. Pure: records in, text out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPORTS, ALERTS = "kestrel.drift-reports.v1", "kestrel.alerts.v1"
LIFECYCLE, PREDICTIONS = "kestrel.model-lifecycle.v1", "kestrel.predictions.v1"
WATCHED = (REPORTS, ALERTS, LIFECYCLE, PREDICTIONS)
ENDED = ("rejected", "failed", "load_failed", "rolled_back")
"""Lifecycle stages after which this run's challenger will not serve."""
REASON = 240
"""Characters of a lifecycle reason the outcome quotes (the gate's names every rule with its numbers)."""


@dataclass
class Seen:
    """The watched records of one model in arrival order, as (ms, topic, value); of predictions only the first of
    each (source, version)."""

    model: str
    records: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    _versions: set[tuple[str, str]] = field(default_factory=set)

    def add(self, ms: int, topic: str, value: dict[str, Any]) -> bool:
        """Keeps the record if it is news (this model's, not a repeated prediction); says whether it did."""
        if value.get("model_name", self.model) != self.model:
            return False
        if topic == PREDICTIONS:
            key = (value["source"], value["model_version"])
            if key in self._versions:
                return False
            self._versions.add(key)
        self.records.append((ms, topic, value))
        return True

    def first(self, topic: str, check: Any) -> tuple[int, dict[str, Any]] | None:
        return next(((ms, v) for ms, t, v in self.records if t == topic and check(v)), None)

    def stages(self) -> list[str]:
        return [v["stage"] for _, t, v in self.records if t == LIFECYCLE]

    def promoted(self) -> str | None:
        found = self.first(LIFECYCLE, lambda v: v["stage"] == "promoted")
        return found[1]["version"] if found else None

    def serving_ms(self) -> int | None:
        """When the stream scorer first scored with the promoted version."""
        version = self.promoted()
        found = self.first(PREDICTIONS, lambda v: v["source"] == "stream" and v["model_version"] == version)
        return found[0] if version is not None and found else None

    def finished(self) -> bool:
        """The loop closed (the promoted version serves) or its run ended without a promotion."""
        return self.serving_ms() is not None or any(stage in ENDED for stage in self.stages())


def degraded(report: dict[str, Any]) -> bool:
    """What the loop's PerformanceDegraded rule fires on (kestrel.devstack.loop.RULES)."""
    perf = report.get("performance") or {}
    return bool(perf.get("degraded")) and perf.get("pr_auc") is not None and perf["pr_auc"] < 0.5


def describe(topic: str, v: dict[str, Any]) -> str:
    """One timeline line of a record."""
    if topic == REPORTS:
        perf = v.get("performance") or {}
        pr_auc = perf.get("pr_auc")
        quality = f"PR-AUC {pr_auc:.2f}" if pr_auc is not None else "PR-AUC -"
        flag = "  QUALITY DEGRADED" if degraded(v) else ""
        return (
            f"drift report  v{v['model_version']} {v['status']:<17} {v['window_size']:>5} rows, "
            f"{len(v['drifted_features'])} features drifted, {quality}{flag}"
        )
    if topic == ALERTS:
        return f"alert         {v['name']} {v['status']} ({v['severity']})"
    if topic == LIFECYCLE:
        metrics = _metrics(v.get("metrics") or {})
        version = f"v{v['version']}" if v["version"] else "-"
        return f"model         {v['stage']:<15} {version:<3} {v['reason'][:110]}{metrics}"
    return f"prediction    first {v['source']} score by v{v['model_version']}"


def _metrics(metrics: dict[str, float]) -> str:
    shown = [f"{k} {metrics[k]:.3f}" for k in ("challenger_pr_auc", "champion_pr_auc", "pr_auc") if k in metrics]
    return f" ({', '.join(shown)})" if shown else ""


def outcome(seen: Seen, onset_ms: int) -> tuple[bool, list[str]]:
    """Whether the loop closed, and the lines that say how far it got: each link's time from drift onset, and
    where it stopped and why when it did not close."""
    links = [
        ("drift report with degraded quality", seen.first(REPORTS, degraded)),
        ("alert firing", seen.first(ALERTS, lambda v: v["status"] == "firing")),
    ]
    links += [(f"lifecycle {s}", seen.first(LIFECYCLE, lambda v, s=s: v["stage"] == s)) for s in _STAGES]
    serving = seen.serving_ms()
    lines = [f"  {what:<36} {(found[0] - onset_ms) / 1000:+7.1f} s" for what, found in links if found]
    if serving is not None:
        took, version = (serving - onset_ms) / 1000, seen.promoted()
        lines.append(f"  {f'stream scorer serves v{version}':<36} {took:+7.1f} s")
        return True, [f"The loop closed: drift onset -> v{version} serving in {took:.1f} s", *lines]
    return False, [f"The loop did not close: {_stopped(seen, links)}", *lines]


_STAGES = ("retrain_started", "evaluated", "loaded", "shadow_started", "promoted")


def _stopped(seen: Seen, links: list[tuple[str, Any]]) -> str:
    ended = seen.first(LIFECYCLE, lambda v: v["stage"] in ENDED)
    if ended is not None:
        return f"the run ended {ended[1]['stage']} at v{ended[1]['version']}: {ended[1]['reason'][:REASON]}"
    reached = [what for what, found in links if found]
    if not reached:
        worst = _lowest_pr_auc(seen)
        return f"time ran out before a drift report showed degraded quality (lowest window PR-AUC: {worst})"
    if seen.promoted() is not None:
        return f"v{seen.promoted()} was promoted but the stream scorer had not scored with it in time"
    last = [v for _, t, v in seen.records if t == LIFECYCLE]
    if last:
        return f"time ran out at lifecycle {last[-1]['stage']} v{last[-1]['version']}: {last[-1]['reason'][:REASON]}"
    return f"time ran out after the last link reached: {reached[-1]}"


def _lowest_pr_auc(seen: Seen) -> str:
    values = [(v.get("performance") or {}).get("pr_auc") for _, t, v in seen.records if t == REPORTS]
    measured = [x for x in values if x is not None]
    return f"{min(measured):.2f}" if measured else "none measured yet"
