"""`kestrel-stack` argument handling (no servers)."""

from __future__ import annotations

from pathlib import Path

from kestrel.devstack.cli import _foreground_argv, _parser


def test_a_detached_demo_runs_in_a_background_process_that_keeps_the_state_the_foreground_cleared() -> None:
    args = _parser().parse_args(["--state-dir", "/tmp/s", "up", "--detach", "--demo"])
    args.state_dir = Path("/tmp/s")
    argv = _foreground_argv(args)
    assert argv[argv.index("up") :] == ["up", "--demo", "--keep-state"]


def test_up_without_demo_keeps_its_arguments() -> None:
    args = _parser().parse_args(["up", "--detach", "--no-triton", "--replicas", "features=2"])
    args.state_dir = Path("/tmp/s")
    assert _foreground_argv(args)[-3:] == ["up", "--no-triton", "--replicas=features=2"]
