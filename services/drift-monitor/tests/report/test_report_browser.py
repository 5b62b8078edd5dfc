"""The report as a browser shows it: headless Chromium (Debian's, installed by scripts/bootstrap.sh) opens the file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from kestrel.drift_monitor import svg
from kestrel.drift_monitor.render import render

DRIFTED = "merchant_risk_24h"


def chromium() -> str:
    """The browser, or a skip with the reason; under CI=true a missing browser fails instead of skipping."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is missing under CI=true: scripts/bootstrap.sh installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed: scripts/bootstrap.sh installs it (apt-get install chromium)")


def headless(tmp_path: Path, *args: str) -> str:
    """Run headless Chromium on the page; no sandbox because tests run as root in containers."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    command += [f"--user-data-dir={tmp_path / 'profile'}", *args, (tmp_path / "report.html").as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def page(tmp_path: Path, make_report, make_feature, make_performance) -> Path:
    features = [make_feature("amount"), make_feature(DRIFTED, drifted=True, shift=0.25), make_feature("hour_of_day")]
    windows = [make_report(i, performance=make_performance(pr)) for i, pr in enumerate([0.9, 0.87, 0.84])]
    windows.append(make_report(3, features=features, performance=make_performance(0.7, estimated_precision=0.5)))
    path = tmp_path / "report.html"
    path.write_text(render(windows))
    return path


def test_the_browser_names_the_drifted_feature_first(page: Path, tmp_path: Path) -> None:
    dom = headless(tmp_path, "--dump-dom")

    assert "<title>Drift report: fraud version 7</title>" in dom
    captions = re.findall(r"<figcaption><strong>([^<]+)</strong>", dom.split("<details open")[1])
    assert captions[:2] == ["score", DRIFTED]  # the score distribution, then the drifted feature
    assert f'<figure class="drifted"><figcaption><strong>{DRIFTED}</strong>' in dom


def test_the_screenshot_shows_the_charts(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    headless(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")

    image = Image.open(shot).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 22) or []}

    assert image.size == (1280, 2400)
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 20  # a blank or single-colour page is near 0
    for hex_ in (svg.DRIFTED, svg.REFERENCE, svg.CURRENT, svg.BAND):  # the bars and the band were drawn
        assert tuple(int(hex_[i : i + 2], 16) for i in (1, 3, 5)) in colours, hex_
