"""Bench rows, the printed table and the JSON file."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Row:
    group: str
    name: str
    throughput: float | None = None
    """Units per second (events, rows, vectors)."""
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline: str | None = None
    """Name of the raw-baseline row this row is compared with."""
    ratio: float | None = None
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def latency_ms(samples_s: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples_s) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def attach_ratios(rows: list[Row]) -> None:
    by_name = {r.name: r for r in rows}
    for row in rows:
        base = by_name.get(row.baseline or "")
        if base and base.throughput and row.throughput:
            row.ratio = row.throughput / base.throughput


def machine() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def render(rows: list[Row]) -> str:
    header = ("group", "benchmark", "throughput/s", "p50 ms", "p99 ms", "vs baseline", "notes")
    lines = [
        (
            r.group,
            r.name,
            _fmt(r.throughput, ",.0f"),
            _fmt(r.p50_ms, ".2f"),
            _fmt(r.p99_ms, ".2f"),
            f"{r.ratio:.2f}x {r.baseline}" if r.ratio else "",
            r.notes,
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join(out)


def write_json(rows: list[Row], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [asdict(r) for r in rows],
    }
    path = directory / f"bench-{int(time.time())}.json"
    path.write_text(json.dumps(doc, indent=2))
    (directory / "latest.json").write_text(json.dumps(doc, indent=2))
    return path
