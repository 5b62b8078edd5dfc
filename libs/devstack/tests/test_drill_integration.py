"""The CI-sized fault drill: a few SIGKILLs of the hot path under light load lose nothing and duplicate no store."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestrel.devstack.drill.options import Options
from kestrel.devstack.drill.report import EXPECT, render
from kestrel.devstack.drill.runner import run

pytestmark = pytest.mark.integration

HOT_PATH = ("ingest", "features", "feature-writer", "inference-scorer", "prediction-logger")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """World-searchable, outside pytest's tmp tree: PostgreSQL runs as its own user and must reach it."""
    path = Path(tempfile.mkdtemp(prefix="kestrel-drill-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_small_drill_loses_nothing_and_duplicates_no_store(state_dir: Path) -> None:
    options = Options(
        seed=14,
        rate=50,
        duration_s=45,
        faults=",".join(f"kill:{s}" for s in HOT_PATH),
        cards=300,
        drain_s=180,
        services=HOT_PATH,
    )
    report = await run(options, state_dir / "stack")
    print(render(report))
    tallies = {t.name: t for t in report.tallies}
    assert report.sent >= 0.9 * options.rate * options.duration_s
    assert report.drained_s is not None
    assert all(r.seconds is not None for r in report.recoveries) and len(report.recoveries) == len(HOT_PATH)
    assert {name: t.lost for name, t in tallies.items()} == dict.fromkeys(tallies, 0)
    stores = [name for name, expect in EXPECT.items() if expect.store]
    assert {name: tallies[name].duplicated for name in stores} == dict.fromkeys(stores, 0)
    assert all(t.differing == 0 for t in tallies.values())
    assert tallies["PostgreSQL predictions"].held == report.sent
