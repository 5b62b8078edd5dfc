"""`kestrel-stack drill` arguments (no servers): defaults, and a bad fault schedule refused before anything starts."""

from __future__ import annotations

from pathlib import Path

from kestrel.devstack.cli import _parser
from kestrel.devstack.drill.command import main


def test_drill_arguments_and_defaults() -> None:
    args = _parser().parse_args(["drill", "--seed", "7", "--rate", "50", "--faults", "kill:features*3"])
    assert (args.seed, args.rate, args.faults, args.duration) == (7, 50, "kill:features*3", 60.0)


def test_a_bad_schedule_exits_2_without_starting_a_stack(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--state-dir", str(tmp_path), "--faults", "kill:nobody"]) == 2
    assert "unknown kill target 'nobody'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
