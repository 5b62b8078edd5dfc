"""The drill's result and its printed table (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from kestrel.devstack.drill.reconcile import Expectation, Tally, problems
from kestrel.devstack.drill.schedule import Fault

EXPECT = {
    "events topic": Expectation(store=False),
    "features topic": Expectation(store=False),
    "predictions topic": Expectation(store=False),
    "PostgreSQL predictions": Expectation(store=True),
    "Redis vectors": Expectation(store=True),
    "Redis event logs": Expectation(store=True),
    "alerts topic": Expectation(store=True),
    "lifecycle topic": Expectation(store=True),
}
"""Topics carry at-least-once copies (identical only); stores, alerts and lifecycle events hold each id once."""


@dataclass(frozen=True)
class Recovery:
    fault: Fault
    seconds: float | None
    """From the fault until the service (or dependency) served again; None: not within the drill's wait."""


@dataclass
class Report:
    seed: int
    rate: int
    duration_s: float
    sent: int = 0
    """Events ingest acknowledged (after the sender's retries)."""
    sent_s: float = 0.0
    """Seconds from the first call to the last answer: sent / sent_s is the rate really offered."""
    unacked: int = 0
    """Events the sender gave up on: never promised, so never counted as lost."""
    resent: int = 0
    """Events sent more than once after a failed or unanswered call (each may repeat on the events topic)."""
    tallies: list[Tally] = field(default_factory=list)
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    recoveries: list[Recovery] = field(default_factory=list)
    drained_s: float | None = None
    """Seconds after traffic until every consumer group caught up; None: it did not within the wait."""
    failed_calls: Mapping[str, int] = field(default_factory=dict)
    """PublishBatch calls that failed, by gRPC status (RESOURCE_EXHAUSTED, UNAVAILABLE: pushback or down)."""
    peak_rss_kib: Mapping[str, int] = field(default_factory=dict)
    """Highest resident memory seen per service while the drill ran."""

    @property
    def problems(self) -> list[str]:
        found = problems(self.tallies, EXPECT)
        if self.drained_s is None:
            found.append("lag did not drain")
        found += [f"{r.fault} did not recover" for r in self.recoveries if r.seconds is None]
        return found


def render(report: Report) -> str:
    """The table the drill prints (and docs/reliability.md keeps)."""
    drained = f"{report.drained_s:.1f} s" if report.drained_s is not None else "NOT DRAINED"
    lines = [
        f"fault drill: seed {report.seed}, {report.rate}/s for {report.duration_s:g} s ({_achieved(report)}), "
        f"{len(report.recoveries)} faults; events acknowledged {report.sent}, unacknowledged {report.unacked}, "
        f"resent {report.resent}; lag drained after {drained}",
        "",
        "| where | held | copies | lost | dup identical | dup differing | foreign |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {t.name} | {t.held} | {t.copies} | {t.lost} | {t.identical} | {t.differing} | {t.foreign} |"
        for t in report.tallies
    ]
    lines += ["", "| dead-lettered (service: reason) | records |", "| --- | ---: |"]
    lines += [f"| {reason} | {n} |" for reason, n in report.dead_letters.items()] or ["| none | 0 |"]
    lines += ["", *_recoveries(report), "", *_load(report), "", verdict(report)]
    return "\n".join(lines)


def _achieved(report: Report) -> str:
    return f"acknowledged {report.sent / report.sent_s:,.0f}/s over {report.sent_s:.0f} s" if report.sent_s else "-"


def _recoveries(report: Report) -> list[str]:
    by_target: dict[str, list[float | None]] = {}
    for r in report.recoveries:
        by_target.setdefault(f"{r.fault.kind} {r.fault.target}", []).append(r.seconds)
    lines = ["| fault | times | recovered | recovery s (median / max) |", "| --- | ---: | ---: | ---: |"]
    for name, seconds in by_target.items():
        done = [s for s in seconds if s is not None]
        spread = f"{statistics.median(done):.1f} / {max(done):.1f}" if done else "-"
        lines.append(f"| {name} | {len(seconds)} | {len(done)} | {spread} |")
    return lines


def _load(report: Report) -> list[str]:
    calls = ", ".join(f"{code} {n}" for code, n in report.failed_calls.items()) or "none"
    lines = [f"failed ingest calls (pushback or down): {calls}", "", "| service | peak RSS MiB |", "| --- | ---: |"]
    return lines + [f"| {name} | {kib / 1024:.0f} |" for name, kib in sorted(report.peak_rss_kib.items())]


def verdict(report: Report) -> str:
    found = report.problems
    return "PASS: 0 lost, 0 duplicated in stores" if not found else "FAIL: " + "; ".join(found)
