"""run() end to end on the sinks that need no server, plus the CLI and the progress line."""

from __future__ import annotations

import asyncio
import io
import json

import fastavro
import pytest

from kestrel.common.avro import load_schema
from kestrel.simulator.__main__ import main
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.progress import Progress, render
from kestrel.simulator.runner import RunConfig, run
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.summary import Summary


def small(**overrides) -> RunConfig:
    generator = GeneratorConfig(cards=500, seed=3, run_id="r", fraud_rate=0.05, merchants_per_country=50)
    options = {
        "generator": generator,
        "to": "null",
        "rate": 0,
        "clock": "sim",
        "progress": "off",
        "settings": SimulatorSettings(_env_file=None),
    }
    return RunConfig(**{**options, **overrides})


async def test_count_is_exact_and_every_label_is_drained():
    summary = await run(small(count=12_345))
    assert summary.generated == summary.sent == 12_345
    assert summary.labels_sent == summary.labels_generated == 12_345
    assert summary.fraud_labels == summary.fraud > 0
    assert summary.failed == summary.rejected == 0


async def test_sim_clock_ends_about_now_by_default():
    summary = await run(small(count=2_000))
    import time

    assert abs(summary.last_event_ms - time.time() * 1000) < 120_000
    assert summary.last_event_ms - summary.first_event_ms > 60_000  # 500 cards pay slowly: hours of history


async def test_wall_clock_holds_the_rate_and_stops_on_time():
    summary = await run(small(clock="wall", rate=2_000, duration_s=1.5))
    assert summary.elapsed_s == pytest.approx(1.5, abs=0.3)
    assert summary.rate == pytest.approx(2_000, rel=0.15)


async def test_stop_event_ends_the_run():
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, stop.set)
    summary = await run(small(clock="wall", rate=1_000), stop)
    assert 0 < summary.generated <= 1_100


async def test_jsonl_writes_framed_records(tmp_path):
    out = tmp_path / "traffic.jsonl"
    summary = await run(small(to="jsonl", count=1_000, output=str(out)))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    events = [r["value"] for r in rows if r["topic"] == "kestrel.events.v1"]
    labels = [r["value"] for r in rows if r["topic"] == "kestrel.labels.v1"]
    assert len(events) == 1_000 and len(labels) == summary.labels_sent == 1_000
    assert all(r["key"] == r["value"]["entity_id"] for r in rows)
    assert fastavro.validation.validate_many(events, load_schema("event"), raise_errors=True)


def test_cli_writes_a_reproducible_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("KESTREL_SIM_LOG_FORMAT", "json")
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path in paths:
        code = main(
            [
                "--to",
                "jsonl",
                "--output",
                str(path),
                "--count",
                "500",
                "--clock",
                "sim",
                "--rate",
                "0",
                "--start",
                "2025-01-01T00:00:00Z",
                "--run-id",
                "cli",
                "--seed",
                "5",
                "--cards",
                "300",
                "--progress",
                "off",
                "--label-delay",
                "5,10",
                "--invalid-rate",
                "0.02",
            ]
        )
        assert code == 0
    assert paths[0].read_text() == paths[1].read_text()
    rows = [json.loads(line) for line in paths[0].read_text().splitlines()]
    events = [r["value"] for r in rows if r["topic"] == "kestrel.events.v1"]
    in_millis = [e for e in events if e["event_time"] > 10**12]  # invalid ones may be in seconds
    assert len(in_millis) > 480 and min(e["event_time"] for e in in_millis) >= 1_735_689_600_000


def test_cli_refuses_bad_values(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--fraud-rate", "3", "--to", "null"])
    assert exc.value.code == 2
    assert "fraud_rate" in capsys.readouterr().err


def test_progress_line_and_tty_rendering():
    summary = Summary(
        elapsed_s=2.0,
        generated=1_000,
        sent=990,
        rejected=10,
        fraud=12,
        labels_sent=400,
        invalid=10,
        drift="amount-shift 50%",
    )
    line = render(summary, 495.0)
    assert "sent 990 (495/s)" in line and "rejected 10" in line and "fraud 1.20%" in line
    assert "drift amount-shift 50%" in line
    stream = io.StringIO()
    progress = Progress(lambda: summary, "tty", stream=stream)
    progress.show()
    progress.show()
    assert stream.getvalue().count("\r") == 2 and "\n" not in stream.getvalue()
