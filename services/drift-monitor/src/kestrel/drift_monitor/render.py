"""DriftReport records (dicts as the Avro schema decodes them) to one self-contained HTML page: no I/O, no network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from kestrel.drift_monitor import svg

Report = Mapping[str, Any]

STATUS_TEXT = {"ok": "no drift", "drift": "drift", "insufficient_data": "insufficient data"}

PERFORMANCE_COLUMNS = (
    "labelled positives pr_auc reference_pr_auc band_low band_high roc_auc precision estimated_precision recall "
    "estimated_recall"
).split()

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1120px;
color:#0f172a;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#475569;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{padding:3px 10px;border-bottom:1px solid #e2e8f0;
text-align:right}th{background:#f1f5f9}td.name,th.name{text-align:left}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600}
.ok{background:#dcfce7;color:#166534}.drift{background:#fee2e2;color:#991b1b}
.insufficient_data{background:#fef9c3;color:#854d0e}
tr.drifted td{background:#fef2f2}.verdict-drifted{color:#b91c1c;font-weight:600}
.insufficient{border-left:4px solid #ca8a04;background:#fefce8;padding:8px 12px}
.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #e2e8f0;border-radius:6px;padding:8px}figure.drifted{border-color:#fca5a5}
figcaption{font-size:13px;margin-bottom:4px}figcaption .stat{color:#475569;display:block;font-size:12px}
details{border-top:1px solid #cbd5e1;padding:6px 0}summary{cursor:pointer;font-weight:600}
svg .grid{stroke:#e2e8f0;stroke-width:1}svg .tick{font-size:10px;fill:#475569}
.legend span{margin-right:14px}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def render(reports: Sequence[Report], *, generated_at: datetime | None = None) -> str:
    """The page for one window (one report) or a time range (several windows of one model version)."""
    if not reports:
        raise ValueError("no drift reports to render")
    windows = sorted(reports, key=lambda r: _ms(r["window_start"]))
    body = [_header(windows, generated_at), _timeline(windows), _performance(windows)]
    newest = windows[-1]
    body.append(f"<h2>Windows ({len(windows)})</h2>")
    body.extend(_window(r, open_=r is newest or r.get("status") == "drift") for r in reversed(windows))
    title = escape(f"Drift report: {_subject(newest)}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f"<body>{''.join(body)}</body></html>\n"
    )


def ordered_features(report: Report) -> list[Mapping[str, Any]]:
    """Drifted features first (largest effect first, as the report lists them), then the rest in definition order."""
    metrics = [m for m in report.get("metrics", []) if m.get("kind") != "score"]
    rank = {name: i for i, name in enumerate(report.get("drifted_features", []))}
    drifted = sorted(
        (m for m in metrics if m["name"] in rank or m.get("drifted")), key=lambda m: rank.get(m["name"], 1e9)
    )
    return drifted + [m for m in metrics if m not in drifted]


def _header(windows: Sequence[Report], generated_at: datetime | None) -> str:
    first, last = windows[0], windows[-1]
    span = f"{_time(first['window_start'])} – {_time(last['window_end'])}"
    when = f" · generated {_time(generated_at)}" if generated_at is not None else ""
    counts = {status: sum(1 for r in windows if r.get("status") == status) for status in STATUS_TEXT}
    badges = " ".join(_badge(s, f"{n} {STATUS_TEXT[s]}") for s, n in counts.items() if n)
    return (
        f"<h1>Drift report: {escape(_subject(last))}</h1>"
        f'<p class="meta">{escape(str(last.get("subject", "")))} · feature set '
        f"{escape(str(last.get('feature_set_version', '')))} · {escape(span)} (UTC){escape(when)}</p>"
        f"<p>{len(windows)} window{'s' if len(windows) != 1 else ''}: {badges}</p>"
    )


def _timeline(windows: Sequence[Report]) -> str:
    rows = [
        f"<tr><td class='name'>{escape(_time(r['window_start']))}</td><td class='name'>{_badge(r.get('status', 'ok'))}"
        f"</td><td>{r.get('window_size', 0)}</td><td>{r.get('late_predictions', 0)}</td>"
        f"<td class='name'>{_health(r.get('performance'))}</td>"
        f"<td class='name'>{escape(', '.join(r.get('drifted_features', [])) or '–')}</td></tr>"
        for r in windows
    ]
    head = "<tr><th class='name'>window start</th><th class='name'>status</th><th>rows</th><th>late</th>"
    head += "<th class='name'>performance</th><th class='name'>drifted features</th></tr>"
    return f"<h2>Windows at a glance</h2><table>{head}{''.join(rows)}</table>"


def _health(perf: Mapping[str, Any] | None) -> str:
    if not perf:
        return "–"
    return _badge("drift", "degraded") if perf.get("degraded") else _badge("ok", "within band")


def _performance(windows: Sequence[Report]) -> str:
    perf = [r.get("performance") or {} for r in windows]
    if not any(perf):
        return "<h2>Performance over time</h2><p>No performance in these reports (feature-only drift).</p>"
    if len(windows) == 1:
        return "<h2>Performance</h2><p>One window: its performance is in its section below.</p>"
    xs = [float(_ms(r["window_start"])) for r in windows]
    labels = (_time(windows[0]["window_start"]), _time(windows[-1]["window_start"]))
    band = ([p.get("band_low") for p in perf], [p.get("band_high") for p in perf])
    pr_auc = svg.time_chart(
        xs,
        [
            svg.Series("measured PR-AUC", [p.get("pr_auc") for p in perf], svg.CURRENT),
            svg.Series("reference PR-AUC", [p.get("reference_pr_auc") for p in perf], svg.REFERENCE, dashed=True),
        ],
        band=band,
        x_labels=labels,
        title="PR-AUC per window against the reference band",
    )
    precision = svg.time_chart(
        xs,
        [
            svg.Series("measured precision", [p.get("precision") for p in perf], svg.CURRENT),
            svg.Series("estimated precision (CBPE)", [p.get("estimated_precision") for p in perf], svg.ESTIMATE),
            svg.Series("measured recall", [p.get("recall") for p in perf], "#7c3aed"),
            svg.Series("estimated recall (CBPE)", [p.get("estimated_recall") for p in perf], "#db2777", dashed=True),
        ],
        x_labels=labels,
        title="Precision and recall at the threshold: measured on labels against estimated before labels",
    )
    return (
        "<h2>Performance over time</h2><h3>PR-AUC: measured against the reference band</h3>"
        + _legend(("measured PR-AUC", svg.CURRENT), ("reference PR-AUC", svg.REFERENCE), ("reference band", svg.BAND))
        + pr_auc
        + "<h3>Precision and recall: measured (labels) against estimated (no labels needed)</h3>"
        + _legend(
            ("measured precision", svg.CURRENT),
            ("estimated precision", svg.ESTIMATE),
            ("measured recall", "#7c3aed"),
            ("estimated recall", "#db2777"),
        )
        + precision
    )


def _window(report: Report, *, open_: bool) -> str:
    status = report.get("status", "ok")
    span = f"{_time(report['window_start'])} – {_time(report['window_end'])}"
    drifted = report.get("drifted_features", [])
    named = f": {', '.join(drifted)}" if drifted else ""
    parts = [
        f"<details{' open' if open_ else ''}><summary>{escape(span)} {_badge(status)}{escape(named)}</summary>",
        f'<p class="meta">{escape(_facts(report))}</p>',
    ]
    if status == "insufficient_data":
        parts.append(
            f'<p class="insufficient"><strong>Insufficient data.</strong> {report.get("window_size", 0)} rows in this '
            "window is below the minimum-sample rule (or the reference is too small): no drift verdict is made, and "
            "the statistics below, if any, are shown for information only.</p>"
        )
    parts.extend([_score(report), _table(report), _histograms(report), _window_performance(report), "</details>"])
    return "".join(parts)


def _facts(report: Report) -> str:
    facts = (
        f"report {report.get('report_id', '')} · {report.get('window_size', 0)} rows against "
        f"{report.get('reference_size', 0)} reference rows · {report.get('correction', '')} at alpha "
        f"{svg.num(report.get('alpha'))} · {report.get('late_predictions', 0)} late predictions"
    )
    if report.get("log_complete") is False:  # a later schema field: the window covers what the log had stored
        facts += " · prediction log incomplete: the window covers the predictions stored in time"
    return facts


def _score(report: Report) -> str:
    scores = [m for m in report.get("metrics", []) if m.get("kind") == "score"]
    if not scores:
        return ""
    return f"<h3>Score distribution</h3><div class='grid'>{''.join(_figure(m) for m in scores)}</div>"


def _table(report: Report) -> str:
    scores = [m for m in report.get("metrics", []) if m.get("kind") == "score"]
    rows = [_row(m) for m in [*scores, *ordered_features(report)]]
    head = (
        "<tr><th class='name'>feature</th><th class='name'>test</th><th>statistic</th><th>p-value</th>"
        "<th>corrected p</th><th class='name'>effect</th><th>effect size</th><th class='name'>verdict</th></tr>"
    )
    return f"<h3>Tests</h3><table>{head}{''.join(rows)}</table>"


def _row(m: Mapping[str, Any]) -> str:
    verdict = '<span class="verdict-drifted">drifted</span>' if m.get("drifted") else "ok"
    return (
        f"<tr{' class=drifted' if m.get('drifted') else ''}><td class='name'>{escape(m['name'])}</td>"
        f"<td class='name'>{escape(str(m.get('test', '')))}</td><td>{svg.num(m.get('statistic'))}</td>"
        f"<td>{svg.num(m.get('p_value'))}</td><td>{svg.num(m.get('p_corrected'))}</td>"
        f"<td class='name'>{escape(str(m.get('effect', '')))}</td><td>{svg.num(m.get('effect_size'))}</td>"
        f"<td class='name'>{verdict}</td></tr>"
    )


def _histograms(report: Report) -> str:
    figures = [_figure(m) for m in ordered_features(report)]
    legend = _legend(("reference", svg.REFERENCE), ("current", svg.CURRENT), ("current, drifted", svg.DRIFTED))
    return f"<h3>Reference against current, drifted first</h3>{legend}<div class='grid'>{''.join(figures)}</div>"


def _figure(m: Mapping[str, Any]) -> str:
    ref, cur = list(m.get("reference_shares", [])), list(m.get("current_shares", []))
    drifted = bool(m.get("drifted"))
    stat = (
        f"{m.get('test', '')} {svg.num(m.get('statistic'))}, p {svg.num(m.get('p_value'))}, corrected "
        f"{svg.num(m.get('p_corrected'))} · {m.get('effect', '')} {svg.num(m.get('effect_size'))}"
    )
    caption = f"<figcaption><strong>{escape(m['name'])}</strong>{' · drifted' if drifted else ''}"
    caption += f"<span class='stat'>{escape(stat)}</span></figcaption>"
    if not ref and not cur:
        return f"<figure>{caption}<p>No bins recorded.</p></figure>"
    bins = max(len(ref), len(cur))
    labels = list(m.get("categories") or []) or svg.bin_labels(m.get("kind", "numeric"), m.get("bin_edges", []), bins)
    chart = svg.histogram(labels, ref, cur, drifted=drifted, title=f"{m['name']}: reference against current")
    return f"<figure{' class=drifted' if drifted else ''}>{caption}{chart}</figure>"


def _window_performance(report: Report) -> str:
    perf = report.get("performance")
    if not perf:
        return ""
    keys = PERFORMANCE_COLUMNS
    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys)
    cells = "".join(f"<td>{svg.num(perf.get(k))}</td>" for k in keys)
    return f"<h3>Performance {_health(perf)}</h3><table><tr>{head}</tr><tr>{cells}</tr></table>"


def _legend(*items: tuple[str, str]) -> str:
    spans = "".join(
        f"<span><i class='swatch' style='background:{colour}'></i>{escape(name)}</span>" for name, colour in items
    )
    return f"<p class='legend'>{spans}</p>"


def _badge(status: str, text: str | None = None) -> str:
    css = status if status in STATUS_TEXT else "ok"
    return f"<span class='badge {css}'>{escape(text or STATUS_TEXT.get(status, status))}</span>"


def _subject(report: Report) -> str:
    name, version = report.get("model_name"), report.get("model_version")
    if name is None and version is None:
        return f"{report.get('subject', 'features')} of feature set {report.get('feature_set_version', '')}"
    return f"{name or 'model'} version {version or '?'}"


def _ms(value: int | datetime) -> int:
    """Avro timestamp-millis as Kestrel's serde decodes it (int ms), or as fastavro's logical types do."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


def _time(value: int | datetime | None) -> str:
    if value is None:
        return ""
    when = value if isinstance(value, datetime) else datetime.fromtimestamp(_ms(value) / 1000, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
