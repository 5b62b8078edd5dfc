"""Installs tritonserver from the nvidia-pytriton wheel into a cached venv and builds its process environment."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from kestrel.devstack.paths import cache_dir
from kestrel.devstack.process import ComponentError

# The wheel pins numpy<2 while the workspace uses numpy 2: hence a venv of its own.
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy<2")
MARKER = ".kestrel-triton.json"

# Run with the venv's interpreter; prints what the Python backend stub needs to embed it.
_PROBE = """
import json, sys, sysconfig
from pathlib import Path
import numpy, pytriton
so = sysconfig.get_config_var("INSTSONAME") or f"libpython{sys.version_info[0]}.{sys.version_info[1]}.so.1.0"
dirs = [Path(sys.base_prefix, "lib"), *([Path(d)] if (d := sysconfig.get_config_var("LIBDIR")) else [])]
print(json.dumps({
    "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
    "libpython_dir": next((str(d) for d in dirs if (d / so).exists()), None),
    "site_packages": sysconfig.get_paths()["purelib"],
}))
"""

log = structlog.get_logger()


@dataclass(frozen=True)
class TritonInstall:
    """Paths of a ready tritonserver install and the environment its process needs."""

    venv: Path
    python_version: str
    libpython_dir: str | None
    site_packages: Path

    @property
    def server_root(self) -> Path:
        return self.site_packages / "pytriton" / "tritonserver"

    @property
    def server_bin(self) -> Path:
        return self.server_root / "bin" / "tritonserver"

    @property
    def libs_dir(self) -> Path:
        return self.site_packages / "nvidia_pytriton.libs"

    @property
    def caches_dir(self) -> Path:
        return self.server_root / "caches"

    @property
    def backends_dir(self) -> Path:
        return self.venv.parent / "triton-backends"

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """Environment for tritonserver and the Python backend stubs it spawns."""
        env = dict(base)
        # The stub embeds Python in isolated mode (PYTHONPATH/PYTHONHOME are ignored) and finds its
        # interpreter by looking "python3" up on PATH; the venv's pyvenv.cfg then puts its
        # site-packages (numpy<2) on sys.path. This is what pytriton itself relies on.
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), base.get("PATH", os.defpath)])
        libs = [str(self.libs_dir), str(self.server_root / "lib")]
        # The stub links libpython3.X.so.1.0: take the venv's base interpreter's (matches the stdlib it
        # will use) when that one is a shared build; else the dynamic loader looks for a system one.
        if self.libpython_dir:
            libs.append(self.libpython_dir)
        if base.get("LD_LIBRARY_PATH"):
            libs.append(base["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        return env


def ensure_install(root: Path | None = None) -> TritonInstall:
    """Create the venv and backend folder once (blocking: ~10 s with uv, ~1 min with pip; ms after)."""
    root = (root or cache_dir()).absolute()
    venv = root / "triton-venv"
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / "triton-venv.lock"):
        install = _read_marker(venv)
        if install is None:
            install = _create_venv(venv)
            shutil.rmtree(install.backends_dir, ignore_errors=True)  # its links and stub follow the venv
        _ensure_backends(install)
    return install


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise installs across processes (pytest-xdist workers, several sessions)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_marker(venv: Path) -> TritonInstall | None:
    try:
        data = json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if data.get("requirements") != list(REQUIREMENTS):
        return None
    return TritonInstall(venv, data["python_version"], data["libpython_dir"], Path(data["site_packages"]))


def _create_venv(venv: Path) -> TritonInstall:
    log.info("triton.venv.create", path=str(venv), requirements=REQUIREMENTS)
    shutil.rmtree(venv, ignore_errors=True)
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--python", "3.11", str(venv)])
        _run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), *REQUIREMENTS])
    else:
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS])
    probe = json.loads(_run([str(venv / "bin" / "python"), "-c", _PROBE]))
    (venv / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS), **probe}))
    return TritonInstall(venv, probe["python_version"], probe["libpython_dir"], Path(probe["site_packages"]))


def _ensure_backends(install: TritonInstall) -> None:
    """Backend folder beside the venv: the wheel's Python backend plus the stub matching the venv's Python.

    The wheel ships one stub per Python version outside backends/python; we assemble the folder
    tritonserver expects instead of editing the installed wheel.
    """
    target = install.backends_dir / "python"
    stub = target / "triton_python_backend_stub"
    if stub.exists():
        return
    source = install.server_root / "backends" / "python"
    shipped_stub = install.server_root / "python_backend_stubs" / install.python_version / stub.name
    if not shipped_stub.exists():
        raise ComponentError("triton", f"the wheel has no Python backend stub for Python {install.python_version}")
    shutil.rmtree(install.backends_dir, ignore_errors=True)  # a half-built folder from a crash
    target.mkdir(parents=True)
    for item in source.iterdir():
        (target / item.name).symlink_to(item)
    tmp = stub.with_suffix(".tmp")
    shutil.copy2(shipped_stub, tmp)
    _check_links(install, tmp)
    tmp.rename(stub)  # atomic: a present stub means a complete folder


def _check_links(install: TritonInstall, stub: Path) -> None:
    """Fail now, with a remedy, rather than at the first model load if the stub cannot find libpython."""
    result = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, env=install.env(os.environ))
    missing = [line.strip() for line in result.stdout.splitlines() if "not found" in line]
    if missing:
        raise ComponentError(
            "triton",
            f"Python backend stub lacks {missing}: install libpython{install.python_version} (Debian:"
            f" apt-get install libpython{install.python_version}) or build the venv from a shared-library Python",
        )


def _run(cmd: list[str]) -> str:
    # cwd outside any project so uv reads no pyproject.toml or .python-version of the caller's.
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
    if result.returncode != 0:
        raise ComponentError("triton", f"`{' '.join(cmd)}` failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout
