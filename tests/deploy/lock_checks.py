"""Image contents from uv.lock: what `uv sync --no-dev --package <dist>` (as each Dockerfile runs it) installs."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

NOT_INSTALLED = {
    "ingest": ("tritonclient", "numpy", "redis", "hiredis"),
    "simulator": ("tritonclient", "redis"),
    "features": ("tritonclient", "redis"),
    "feature-writer": ("tritonclient",),
}
"""Distributions an image must not carry: the domain packages live outside kestrel-common so these stay out."""


def load_lock(path: Path) -> list[dict[str, Any]]:
    return tomllib.loads(path.read_text(encoding="utf-8"))["package"]


def install_set(packages: Iterable[Mapping[str, Any]], root: str) -> set[str]:
    """Names reachable from `root` through dependencies and the extras they ask for, dev groups excluded.

    Environment markers are ignored, so the set is an upper bound: a package listed only for another
    platform or Python still counts, which errs on the side of a failing check.
    """
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for package in packages:
        by_name.setdefault(package["name"], []).append(package)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        name, extras = node
        for package in by_name.get(name, ()):
            wanted = [*package.get("dependencies", ())]
            for extra in extras:
                wanted += package.get("optional-dependencies", {}).get(extra, ())
            todo += [(dep["name"], tuple(dep.get("extra", ()))) for dep in wanted]
    return {name for name, _ in seen}


def unwanted_problems(installed: set[str], image: str, unwanted: Iterable[str]) -> list[str]:
    return [f"{image}: installs {name}" for name in unwanted if name in installed]
