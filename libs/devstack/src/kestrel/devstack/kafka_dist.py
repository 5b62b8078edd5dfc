"""The Kafka broker's jars, fetched from Maven Central once (infra/kafka/pom.xml) and cached outside the repo."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import structlog

from kestrel.devstack.paths import cache_dir, repo_root
from kestrel.devstack.process import ComponentError

KAFKA_VERSION = "4.1.1"
_COMPLETE = ".complete"

log = structlog.get_logger()


def kafka_libs_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_dir() / f"kafka-{version}" / "libs"


def ensure_kafka_jars(version: str = KAFKA_VERSION, pom: Path | None = None) -> Path:
    """The cached libs/ folder, downloading it with mvn first when missing or incomplete."""
    libs = kafka_libs_dir(version)
    if (libs / _COMPLETE).exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with (libs.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions starting at once download once
        if not (libs / _COMPLETE).exists():
            _download(pom or repo_root() / "infra" / "kafka" / "pom.xml", libs)
    return libs


def _download(pom: Path, libs: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ComponentError("kafka", "Maven (`mvn`) is needed once to fetch the broker jars; run scripts/bootstrap.sh")
    partial = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    log.info("fetching Kafka jars from Maven Central (once)", pom=str(pom), into=str(libs))
    mvn_log = libs.parent / "mvn.log"
    with mvn_log.open("wb") as out:
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={partial}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if result.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
        shutil.rmtree(partial, ignore_errors=True)
        raise ComponentError("kafka", f"mvn could not fetch the broker jars (exit {result.returncode})", mvn_log)
    (partial / _COMPLETE).write_text(f"{pom}\n")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
