"""`kestrel-drift report`: selection, decoding, the file source end to end, offline --help, one-line failures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kestrel.devstack.ports import free_port
from kestrel.drift_monitor.report import ReportError, Selection, decode, main, parse_time, read_file, select

BIN = Path(sys.executable).parent
CLIENTS = {"aiokafka", "confluent_kafka", "grpc", "redis", "tritonclient", "numpy", "asyncpg", "faust"}


def test_without_a_window_or_range_the_newest_window_is_chosen(make_report) -> None:
    chosen = select([make_report(2), make_report(0), make_report(1)], Selection())

    assert [r["report_id"] for r in chosen] == ["r-2"]


def test_a_range_keeps_the_windows_starting_inside_it_oldest_first(make_report) -> None:
    reports = [make_report(i) for i in range(5)]

    chosen = select(reports, Selection(since=reports[1]["window_start"], until=reports[4]["window_start"]))

    assert [r["report_id"] for r in chosen] == ["r-1", "r-2", "r-3"]


def test_one_window_by_its_start_or_by_report_id(make_report) -> None:
    reports = [make_report(i) for i in range(3)]

    assert [r["report_id"] for r in select(reports, Selection(window_start=reports[1]["window_start"]))] == ["r-1"]
    assert [r["report_id"] for r in select(reports, Selection(report_id="r-0"))] == ["r-0"]


def test_a_window_reported_twice_counts_once_by_its_newest_report(make_report) -> None:
    first, again = make_report(0), make_report(0)
    again |= {"report_id": "r-0-again", "created_at": first["created_at"] + 1}

    assert [r["report_id"] for r in select([again, first], Selection(since=0))] == ["r-0-again"]


def test_several_models_must_be_told_apart(make_report) -> None:
    reports = [make_report(0, model_version="7"), make_report(0, model_version="8")]

    with pytest.raises(ReportError, match=r"fraud/7 \(predictions\), fraud/8 \(predictions\)"):
        select(reports, Selection())
    assert [r["model_version"] for r in select(reports, Selection(model_version="8"))] == ["8"]


def test_a_model_versions_two_subjects_are_told_apart_by_subject(make_report) -> None:
    reports = [make_report(0), {**make_report(0), "report_id": "e-0", "subject": "events"}]
    with pytest.raises(ReportError, match=r"fraud/7 \(events\), fraud/7 \(predictions\).*--subject"):
        select(reports, Selection(model_name="fraud", model_version="7"))
    assert [r["report_id"] for r in select(reports, Selection(subject="events"))] == ["e-0"]


def test_an_empty_selection_is_an_error(make_report) -> None:
    with pytest.raises(ReportError, match="no drift report matches"):
        select([make_report(0)], Selection(model_name="other"))


def test_times_are_iso_or_epoch_milliseconds() -> None:
    assert parse_time("2026-12-03T10:00:00Z") == parse_time("2026-12-03 10:00") == 1_796_292_000_000
    assert parse_time("1796292000000") == 1_796_292_000_000


def test_decode_fills_schema_defaults_and_reads_iso_timestamps(make_report) -> None:
    record = make_report(0)
    for field in ("status", "performance", "late_predictions", "correction"):
        del record[field]
    record["window_start"] = "2026-11-30T00:53:20Z"

    decoded = decode(record)

    assert decoded["window_start"] == 1_796_000_000_000
    assert (decoded["status"], decoded["performance"], decoded["late_predictions"]) == ("ok", None, 0)
    assert decoded["metrics"][0]["name"] == "amount"


def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, make_report) -> None:
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(make_report(0)) + "\n\n" + json.dumps({"report_id": "x"}) + "\n")

    with pytest.raises(ReportError, match=rf"{re.escape(str(path))}:3: not a DriftReport"):
        read_file(path)


def test_from_file_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_report) -> None:
    source, out = tmp_path / "reports.jsonl", tmp_path / "out.html"
    reports = [make_report(0), make_report(1, status="insufficient_data"), make_report(2)]
    source.write_text("".join(json.dumps(r) + "\n" for r in reports))

    main(["report", "--from-file", str(source), "--since", "2026-11-30", "--model-name", "fraud", "-o", str(out)])

    assert capsys.readouterr().out == f"kestrel-drift: wrote {out} (3 windows: 2 ok, 1 insufficient data)\n"
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<details") == 3


def test_a_window_and_a_range_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--from-file", "x", "--report-id", "r-1", "--since", "2026-11-30"])

    assert exit_.value.code == 2 and "drop --since/--until" in capsys.readouterr().err


def test_a_missing_file_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"^kestrel-drift: \[Errno 2\] No such file or directory"):
        main(["report", "--from-file", str(tmp_path / "absent.jsonl")])


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"]])
def test_help_is_offline_and_imports_no_client_library(argv: list[str]) -> None:
    code = (
        f"import sys\nsys.argv = ['kestrel-drift', *{argv!r}]\nfrom kestrel.drift_monitor.report import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {CLIENTS!r}), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)

    assert result.stdout.startswith("usage: kestrel-drift")
    assert result.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("source", "setting", "what"),
    [("--from-topic", "KAFKA_BOOTSTRAP", "kafka"), ("--from-postgres", "POSTGRES_DSN", "postgres")],
)
def test_an_unreachable_source_fails_in_one_line(tmp_path: Path, source: str, setting: str, what: str) -> None:
    port = free_port()
    value = f"127.0.0.1:{port}" if what == "kafka" else f"postgresql://kestrel@127.0.0.1:{port}/kestrel"
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        f"KESTREL_{setting}": value,
        "KESTREL_STARTUP_DEADLINE_S": "1",
        "KESTREL_LOG_FORMAT": "console",
    }

    result = subprocess.run(
        [BIN / "kestrel-drift", "report", source, "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    last = result.stderr.strip().splitlines()[-1]
    address = f"127.0.0.1:{port}" + ("/kestrel" if what == "postgres" else "")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.fullmatch(
        rf"kestrel-drift: {what} not reachable at {re.escape(address)} \(KESTREL_{setting}\) after 1 s: .+", last
    ), last
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_bad_time_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--from-file", "x", "--since", "yesterday"])

    assert "--since: not a time (ISO 8601, or epoch milliseconds): 'yesterday'" in capsys.readouterr().err
