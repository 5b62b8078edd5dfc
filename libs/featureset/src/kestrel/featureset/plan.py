"""A feature set compiled into one straight-line Python function, generated once per feature set.

Interpreting the definitions per event (a call per feature or per window) cost 1.5x the arithmetic
itself; like dataclasses and attrs, we generate the source instead. Each window's slice, sum and
set are computed once and shared by every feature over that window (and a column's set grows from one
window to the next wider one). `FeatureComputer.source` shows the generated code; the parity tests
compare it with the independent numpy version, the golden digests with its own earlier output.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from sys import intern
from typing import Any

from kestrel.featureset.definition import FLAT_SPREAD, FeatureSpec

VectorFunction = Callable[
    [list[int], list[list[float]], list[list[str]], int, int, list[float], list[str], list[float]], None
]
"""fill(times, numeric columns, categorical columns, t, end, numeric values, categorical values, out):
writes the features of an event at time t whose prior events are times[:end] into out (pre-filled
with defaults)."""

ValuesFunction = Callable[[Mapping[str, Any]], tuple[list[float], list[str]]]

_MOMENTS = ("sum", "mean", "std", "max", "min")
_PRIOR = ("ratio_to_mean", "zscore")


def compile_vector(
    features: Sequence[FeatureSpec], numeric: list[str], categorical: list[str]
) -> tuple[VectorFunction, str]:
    """The generated function and its source."""
    lines = ["def fill(times, num, cat, t, end, xs, cs, out):"]
    windows = sorted({f.window_s for f in features if f.window_s}, reverse=True)
    lower = "0"
    for w in windows:  # widest first: each narrower window starts inside the previous one
        lines.append(f"    s{w} = bisect_right(times, t - {w * 1000}, {lower}, end)")
        lower = f"s{w}"
    for i, f in enumerate(features):
        if f.aggregation == "value":
            lines.append(f"    out[{i}] = float(xs[{numeric.index(f.source)}])")
        elif f.aggregation == "hour_of_day":
            lines.append(f"    out[{i}] = float((t // 3600000) % 24)")
    sets: dict[int, str] = {}  # categorical column -> start of the window its set `seen<col>` covers
    for w in sorted(windows):
        group = [(i, f) for i, f in enumerate(features) if f.window_s == w]
        lines += _window(w, group, numeric, categorical, sets)
    source = "\n".join(lines) + "\n"
    namespace: dict[str, object] = {"bisect_right": bisect_right, "FLAT": FLAT_SPREAD}
    exec(compile(source, "<kestrel.features.plan>", "exec"), namespace)
    return namespace["fill"], source  # type: ignore[return-value]


def compile_values(numeric: list[str], categorical: list[str]) -> ValuesFunction:
    """The event's numeric and categorical source values, in source order. Labels are interned: each
    entity's state then holds a few shared strings instead of one object per event, which sets hash and
    compare by identity and which stay in cache (8% of the update's CPU time, measured: docs/perf.md)."""
    nums = ", ".join(f"e[{s!r}]" for s in numeric)
    cats = ", ".join(f"intern(e[{s!r}])" for s in categorical)
    namespace: dict[str, object] = {"intern": intern}
    exec(compile(f"def values(e):\n    return [{nums}], [{cats}]\n", "<kestrel.features.values>", "exec"), namespace)
    return namespace["values"]  # type: ignore[return-value]


def _window(
    w: int, group: list[tuple[int, FeatureSpec]], numeric: list[str], categorical: list[str], sets: dict[int, str]
) -> list[str]:
    s = f"s{w}"
    lines = [f"    # window {w} s: prior events times[{s}:end], plus the event itself"]
    for i, f in group:
        if f.aggregation == "count":
            lines.append(f"    out[{i}] = float(end - {s} + 1)")
        elif f.aggregation == "seconds_since_previous":
            lines.append(f"    if end > {s}:\n        out[{i}] = (t - times[end - 1]) / 1000")
    for source in numeric:
        aggs = _positions([(i, f) for i, f in group if f.source == source and f.aggregation in {*_MOMENTS, *_PRIOR}])
        if aggs:
            lines += _numeric(s, numeric.index(source), aggs)
    for source in categorical:
        aggs = _positions([(i, f) for i, f in group if f.source == source and f.aggregation in ("distinct", "is_new")])
        if aggs:
            lines += _categorical(s, categorical.index(source), aggs, sets)
    return lines


def _positions(group: list[tuple[int, FeatureSpec]]) -> dict[str, str]:
    """aggregation -> the assignment target(s) in the vector, e.g. "out[3] = out[7]"."""
    targets: dict[str, list[str]] = {}
    for i, f in group:
        targets.setdefault(f.aggregation, []).append(f"out[{i}]")
    return {agg: " = ".join(outs) for agg, outs in targets.items()}


def _numeric(s: str, col: int, aggs: dict[str, str]) -> list[str]:
    # Sums run left to right in time order, as sum() does: the same floating point operations in the same
    # order, so every value is bit for bit what it was. Loops, not sum() over a list comprehension (a
    # function call each), and max(p) behind `if p`, not max(p, default=x) (keyword parsing): 0.2-0.5 us each.
    lines = [f"    p = num[{col}][{s}:end]; x = xs[{col}]; n = len(p) + 1; ptot = sum(p); tot = ptot + x; m = tot / n"]
    if "sum" in aggs:
        lines.append(f"    {aggs['sum']} = tot")
    if "mean" in aggs:
        lines.append(f"    {aggs['mean']} = m")
    if "std" in aggs:
        lines.append("    sq = 0\n    for v in p:\n        d = v - m; sq += d * d")
        lines.append(f"    {aggs['std']} = ((sq + (x - m) * (x - m)) / n) ** 0.5")
    if "max" in aggs:
        lines.append(f"    top = max(p) if p else x; {aggs['max']} = top if top > x else x")
    if "min" in aggs:
        lines.append(f"    low = min(p) if p else x; {aggs['min']} = low if low < x else x")
    if aggs.keys() & set(_PRIOR):
        lines.append("    if p:")
        lines.append("        pm = ptot / len(p)")
        if "ratio_to_mean" in aggs:
            lines.append(f"        if pm != 0:\n            {aggs['ratio_to_mean']} = x / pm")
        if "zscore" in aggs:
            lines.append("        if len(p) >= 2:")
            lines.append("            sq = 0\n            for v in p:\n                d = v - pm; sq += d * d")
            lines.append("            sd = (sq / len(p)) ** 0.5")
            lines.append("            if sd > FLAT * max(abs(pm), 1.0):")
            lines.append(f"                {aggs['zscore']} = (x - pm) / sd")
    return lines


def _categorical(s: str, col: int, aggs: dict[str, str], sets: dict[int, str]) -> list[str]:
    """Windows come narrowest first: a column's set over a narrower window is grown by the events only the
    wider one holds, not built again; with no set yet and no `distinct`, `is_new` scans the slice."""
    seen = f"seen{col}"
    if col in sets:
        lines = [f"    {seen}.update(cat[{col}][{s}:{sets[col]}]); new = cs[{col}] not in {seen}"]
    elif "distinct" in aggs:
        lines = [f"    {seen} = set(cat[{col}][{s}:end]); new = cs[{col}] not in {seen}"]
    else:
        lines = [f"    new = cs[{col}] not in cat[{col}][{s}:end]"]
    if "distinct" in aggs or col in sets:
        sets[col] = s
    if "distinct" in aggs:
        lines.append(f"    {aggs['distinct']} = float(len({seen}) + new)")
    if "is_new" in aggs:
        lines.append(f"    {aggs['is_new']} = float(new)")
    return lines
