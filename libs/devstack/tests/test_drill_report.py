"""The drill's table and verdict."""

from __future__ import annotations

from kestrel.devstack.drill.reconcile import Tally
from kestrel.devstack.drill.report import Recovery, Report, render
from kestrel.devstack.drill.schedule import Fault


def report(**changes):
    base = Report(seed=1, rate=100, duration_s=60, sent=6000, sent_s=60.0, drained_s=4.0)
    base.tallies = [Tally("events topic", 6000, 6010, 0, 10, 0), Tally("PostgreSQL predictions", 6000, 6000, 0, 0, 0)]
    base.recoveries = [Recovery(Fault(5, "kill", "features"), 3.0), Recovery(Fault(9, "kill", "features"), 5.0)]
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_clean_run_passes_and_prints_every_part():
    text = render(
        report(
            dead_letters={"ingest: ValidationError": 3},
            failed_calls={"UNAVAILABLE": 4},
            peak_rss_kib={"features": 204800},
        )
    )
    assert "| events topic | 6000 | 6010 | 0 | 10 | 0 | 0 |" in text
    assert "| ingest: ValidationError | 3 |" in text
    assert text.startswith("fault drill: seed 1, 100/s for 60 s (acknowledged 100/s over 60 s), 2 faults")
    assert "| kill features | 2 | 2 | 4.0 / 5.0 |" in text
    assert "failed ingest calls (pushback or down): UNAVAILABLE 4" in text and "| features | 200 |" in text
    assert text.endswith("PASS: 0 lost, 0 duplicated in stores")


def test_store_duplicates_undrained_lag_and_unrecovered_faults_fail():
    r = report(drained_s=None)
    r.tallies.append(Tally("Redis event logs", 10, 11, 0, 0, 1))
    r.recoveries.append(Recovery(Fault(20, "kill", "ingest"), None))
    verdict = render(r).splitlines()[-1]
    assert verdict.startswith("FAIL: ")
    assert "Redis event logs: 1 duplicates with differing content" in verdict
    assert "lag did not drain" in verdict and "kill ingest at 20.0 s did not recover" in verdict
