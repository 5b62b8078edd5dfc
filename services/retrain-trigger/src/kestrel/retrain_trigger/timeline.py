"""The loop as one page: per time bucket the served model's quality (PR-AUC on labelled predictions), the drift
share of the windows starting in it and the version that served; and the timeline of what happened (drift
reported, runs, promotions) from the drift reports and the registry's audit trail. Pure: rows in, text out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np

from kestrel.model.metrics import pr_auc

MIN_LABELLED = 200
"""Fewer labelled predictions in a bucket than this: no PR-AUC point (too noisy to read)."""


@dataclass(frozen=True)
class Bucket:
    start_ms: int
    pr_auc: float | None
    drift_share: float | None
    serving: str | None
    labelled: int


@dataclass(frozen=True)
class Step:
    at_ms: int
    what: str


def buckets(
    predictions: Iterable[tuple[int, str, str, float, bool | None]],
    reports: Iterable[Mapping[str, Any]],
    bucket_ms: int,
) -> list[Bucket]:
    """predictions: (event time ms, model version, source, score, label or None); shadow scores are left out.
    reports: drift report rows with window_start_ms and drift_share."""
    served: dict[int, list[tuple[str, float, bool | None]]] = {}
    for at, version, source, score, label in predictions:
        if source != "shadow":
            served.setdefault(at - at % bucket_ms, []).append((version, score, label))
    shares: dict[int, list[float]] = {}
    for report in reports:
        if report.get("drift_share") is not None:
            start = int(report["window_start_ms"])
            shares.setdefault(start - start % bucket_ms, []).append(float(report["drift_share"]))
    return [_bucket(start, served.get(start, []), shares.get(start)) for start in sorted(set(served) | set(shares))]


def _bucket(start: int, rows: Sequence[tuple[str, float, bool | None]], shares: Sequence[float] | None) -> Bucket:
    labelled = [(score, bool(label)) for _, score, label in rows if label is not None]
    quality = None
    if len(labelled) >= MIN_LABELLED:
        y, s = np.array([lab for _, lab in labelled]), np.array([sc for sc, _ in labelled])
        value = pr_auc(y, s)
        quality = None if np.isnan(value) else value
    serving = Counter(version for version, _, _ in rows).most_common(1)[0][0] if rows else None
    share = max(shares) if shares else None
    return Bucket(start, quality, share, serving, len(labelled))


def drift_share(metrics: Sequence[Mapping[str, Any]]) -> float | None:
    """Share of a report's tested features that drifted (the score is not a feature)."""
    features = [m for m in metrics if m.get("kind") != "score" and m.get("name") != "score"]
    return sum(bool(m.get("drifted")) for m in features) / len(features) if features else None


def steps(reports: Iterable[Mapping[str, Any]], audit: Iterable[Mapping[str, Any]]) -> list[Step]:
    """The first drifted window of each model version, then every audit row (registered, promoted, ...)."""
    out, seen = [], set()
    for report in sorted(reports, key=lambda r: r["window_start_ms"]):
        version = report.get("model_version")
        if report.get("drifted") and version not in seen:
            seen.add(version)
            share = report.get("drift_share")
            detail = f", {share:.0%} of features" if share is not None else ""
            out.append(Step(int(report["window_end_ms"]), f"drift reported on version {version}{detail}"))
    for row in audit:
        alias = f" {row['alias']}" if row.get("alias") else ""
        version = f" version {row['version']}" if row.get("version") else ""
        out.append(Step(int(row["at_ms"]), f"{row['action']}{alias}{version}: {row['reason']}"))
    return sorted(out, key=lambda s: s.at_ms)


def render_text(timeline: Sequence[Step]) -> str:
    return "\n".join(f"{_when(s.at_ms)}  {s.what}" for s in timeline) or "nothing yet"


def render_html(model: str, series: Sequence[Bucket], timeline: Sequence[Step]) -> str:
    """One self-contained page: three charts over the same time axis and the timeline below them."""
    xs = [b.start_ms for b in series]
    versions = sorted({b.serving for b in series if b.serving}, key=_version_key)
    rank = {v: i + 1 for i, v in enumerate(versions)}
    charts = [
        _chart("Quality: PR-AUC of the served model", xs, [b.pr_auc for b in series], 0.0, 1.0),
        _chart("Drift share: drifted features of the windows", xs, [b.drift_share for b in series], 0.0, 1.0),
        _chart(
            f"Serving version ({', '.join(f'{i}: v{v}' for v, i in rank.items())})",
            xs, [float(rank[b.serving]) if b.serving else None for b in series], 0.0, float(max(len(rank), 1)),
        ),
    ]  # fmt: skip
    rows = "".join(f"<tr><td>{_when(s.at_ms)}</td><td>{escape(s.what)}</td></tr>" for s in timeline)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Kestrel loop: {escape(model)}</title>"
        "<style>body{font:14px sans-serif;margin:24px}td{padding:2px 10px;vertical-align:top}"
        "svg{display:block;margin:8px 0}</style></head><body>"
        f"<h1>The loop for {escape(model)}</h1>{''.join(charts)}<h2>Timeline</h2><table>{rows}</table></body></html>"
    )


def _chart(title: str, xs: Sequence[int], ys: Sequence[float | None], lo: float, hi: float) -> str:
    width, height, left, top, plot_h = 760, 150, 44, 22, 100
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)

    def at(x: float, y: float) -> str:
        fx = 0.5 if x1 == x0 else (x - x0) / (x1 - x0)
        return f"{left + fx * (width - left - 10):.1f},{top + plot_h * (1 - (y - lo) / ((hi - lo) or 1)):.1f}"

    points = " ".join(at(x, y) for x, y in zip(xs, ys, strict=True) if y is not None)
    axis = f"<line x1='{left}' y1='{top + plot_h}' x2='{width - 10}' y2='{top + plot_h}' stroke='#999'/>"
    labels = (
        f"<text x='4' y='{top + 8}'>{hi:g}</text><text x='4' y='{top + plot_h}'>{lo:g}</text>"
        f"<text x='{left}' y='{height - 4}'>{_when(x0)}</text>"
        f"<text x='{width - 10}' y='{height - 4}' text-anchor='end'>{_when(x1)}</text>"
    )
    line = f"<polyline fill='none' stroke='#1f6feb' stroke-width='2' points='{points}'/>" if points else ""
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='11'>"
        f"<text x='{left}' y='14' font-weight='bold'>{escape(title)}</text>{axis}{labels}{line}</svg>"
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (1 << 30, version)
