"""Where the embedded stack finds its repository assets, keeps its state and caches downloads."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT_ENV = "KESTREL_REPO_ROOT"
_MARKER = Path("infra") / "kafka" / "pom.xml"


def repo_root() -> Path:
    """$KESTREL_REPO_ROOT, else the checkout enclosing the working directory or this package."""
    if env := os.environ.get(REPO_ROOT_ENV):
        return Path(env)
    for origin in (Path.cwd(), Path(__file__).resolve()):
        for folder in [origin, *origin.parents]:
            if (folder / _MARKER).is_file():
                return folder
    raise FileNotFoundError(f"no Kestrel checkout (with {_MARKER}) found; set {REPO_ROOT_ENV}")


def default_state_dir() -> Path:
    return repo_root() / ".kestrel" / "stack"


def cache_dir() -> Path:
    """$KESTREL_CACHE_DIR, else $XDG_CACHE_HOME/kestrel, else ~/.cache/kestrel: outside the repo."""
    if env := os.environ.get("KESTREL_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kestrel"


def migrations_dir() -> Path:
    return repo_root() / "infra" / "postgres" / "migrations"


def model_repository() -> Path:
    return repo_root() / "infra" / "triton" / "models"
