"""`python -m tests.fuzz --inputs 10000`: the full bad-input run (issue 14), every target, then its table."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .sample import CI_INPUTS, INPUTS_ENV, SEED_ENV, WEIGHTS
from .tally import REPORT_ENV, table

HERE = Path(__file__).parent


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description="Send fuzzed bad input (hypothesis strategies over the protobuf and Avro contracts) through "
        "gRPC to ingest and inference and straight into every consumed topic, on real Kafka, Redis, PostgreSQL "
        "and Triton (the devstack's, or a running stack's via KESTREL_STACK_ENV); print inputs per target, OK, "
        "clear errors, dead letters and crashes/unclear answers (which must be 0).",
        epilog=f"Targets: {', '.join(WEIGHTS)}. The test suite runs the same tests with {CI_INPUTS} inputs.",
    )
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs over all targets (default 10000)")
    parser.add_argument("--seed", type=int, help="hypothesis seed: the same seed replays the same inputs")
    parser.add_argument("-k", dest="select", help="only targets whose test matches this pytest -k expression")
    parser.add_argument("--report", type=Path, help="also write the rows as JSON lines here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = args.report or Path(tmp) / "fuzz.jsonl"
        rows_file.unlink(missing_ok=True)
        env = os.environ | {INPUTS_ENV: str(args.inputs), REPORT_ENV: str(rows_file)}
        if args.seed is not None:
            env[SEED_ENV] = str(args.seed)
        command = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "--timeout", "3600"]
        code = subprocess.call([*command, *(["-k", args.select] if args.select else [])], env=env)
        rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
    print(table(rows))
    for row in rows:
        for detail in row["unclear_inputs"][:3]:
            print(f"unclear, {row['target']}: {detail[:300]}")
    return code or int(any(r["crash/unclear"] for r in rows))


if __name__ == "__main__":
    sys.exit(main())
