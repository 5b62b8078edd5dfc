"""Every console script answers --help at once, offline; every service without Kafka exits in one line."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kestrel.devstack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLIENTS = {"aiokafka", "confluent_kafka", "grpc", "redis", "tritonclient", "numpy", "asyncpg", "faust"}
"""Importing any of these is what makes a --help slow (and a service's --help must connect nowhere)."""


def console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for manifest in sorted([*ROOT.glob("services/*/pyproject.toml"), *ROOT.glob("libs/*/pyproject.toml")]):
        scripts.update(tomllib.loads(manifest.read_text())["project"].get("scripts", {}))
    return scripts


def runtime_services() -> list[str]:
    """Scripts whose package declares a runtime Service (kestrel/<pkg>/service.py)."""
    found = []
    for script, target in console_scripts().items():
        module = target.split(":")[0]
        if module.endswith(".__main__") and importlib.util.find_spec(f"{module[:-9]}.service") is not None:
            found.append(script)
    return found


def test_every_service_is_found() -> None:
    assert {
        "kestrel-ingest",
        "kestrel-features",
        "kestrel-feature-writer",
        "kestrel-inference",
        "kestrel-prediction-logger",
        "kestrel-drift-monitor",
        "kestrel-alerting",
        "kestrel-retrain-trigger",
    } <= set(runtime_services())


@pytest.mark.parametrize("script", sorted(console_scripts()))
def test_help_exits_zero_offline(script: str) -> None:
    result = subprocess.run(
        [BIN / script, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(BIN), "KESTREL_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "Traceback" not in result.stderr


@pytest.mark.parametrize("script", runtime_services())
def test_service_help_imports_no_client_library(script: str) -> None:
    module, _, function = console_scripts()[script].partition(":")
    code = (
        f"import sys\nsys.argv = [{script!r}, '--help']\nfrom {module} import {function} as main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {CLIENTS!r}), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("script", runtime_services())
def test_service_without_kafka_retries_then_exits_in_one_line(script: str, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        "KESTREL_KAFKA_BOOTSTRAP": address,
        "KESTREL_STARTUP_DEADLINE_S": "1.5",
        "KESTREL_METRICS_PORT": "0",
        "KESTREL_HEALTH_PORT": "0",
        "KESTREL_LOG_FORMAT": "console",
    }
    result = subprocess.run([BIN / script], capture_output=True, text=True, timeout=60, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"kafka not reachable at {address} (KESTREL_KAFKA_BOOTSTRAP); retrying" in output
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"{script}: kafka not reachable at {re.escape(address)} \(KESTREL_KAFKA_BOOTSTRAP\) "
        r"after 1\.5 s: .+",
        last,
    ), last
    assert "Traceback" not in output
