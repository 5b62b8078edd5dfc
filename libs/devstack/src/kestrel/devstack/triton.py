"""Real tritonserver (CPU, Python backend) as a local process, from the nvidia-pytriton wheel."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from kestrel.common.errors import KestrelError
from kestrel.devstack.ports import HOST, pick_port
from kestrel.devstack.process import ComponentError, ServerProcess
from kestrel.devstack.triton_env import TritonInstall, ensure_install

# CPU-only: no pinned/CUDA pools or GPU metrics, which only produce warnings without a driver.
_CPU_ARGS = ("--allow-gpu-metrics=false", "--pinned-memory-pool-byte-size=0", "--cuda-memory-pool-byte-size=0:0")

_GLOG_ERROR = re.compile(r"E\d{4} ")


class TritonError(KestrelError):
    """A model could not be loaded, unloaded or inspected; the message carries Triton's reason."""


def _http(method: str, url: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body) for every HTTP status, raises OSError on no answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw) if raw else None


class TritonModelControl:
    """Model control and statistics over Triton's HTTP API (explicit model control mode), for anything with an
    `http_url`: a TritonServer started here or the endpoint of one already running."""

    http_url: str

    async def ensure_loaded(self, name: str) -> None:
        """Load `name` unless Triton already reports it ready."""
        if not await self.model_ready(name):
            await self.load_model(name)

    async def load_model(self, name: str) -> None:
        """Load (or reload) a model from the repository; TritonError with Triton's reason on failure."""
        await self._repository(name, "load")

    async def unload_model(self, name: str, timeout: float = 30.0) -> None:
        """Unload a model and wait until Triton no longer reports it ready."""
        await self._repository(name, "unload")
        deadline = time.monotonic() + timeout
        while await self.model_ready(name):
            if time.monotonic() > deadline:
                raise TritonError(f"model {name!r} still ready {timeout:.0f}s after unload")
            await asyncio.sleep(0.05)

    async def model_ready(self, name: str) -> bool:
        status, _ = await self._call("GET", f"/v2/models/{_quote(name)}/ready", timeout=5.0)
        return status == 200

    async def model_stats(self, name: str) -> dict[str, Any]:
        """Triton's statistics per model version: inference/execution counts and server-side times (ns)."""
        status, body = await self._call("GET", f"/v2/models/{_quote(name)}/stats")
        if status != 200:
            raise TritonError(f"stats of model {name!r} failed ({status}): {_reason(body)}")
        return body

    async def _repository(self, name: str, action: str) -> None:
        status, body = await self._call("POST", f"/v2/repository/models/{_quote(name)}/{action}", {}, timeout=300.0)
        if status != 200:
            raise TritonError(f"{action} of model {name!r} failed ({status}): {_reason(body)}")

    async def _call(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
        try:
            return await asyncio.to_thread(_http, method, f"{self.http_url}{path}", body, timeout)
        except OSError as exc:
            raise TritonError(f"tritonserver at {self.http_url} unreachable: {exc}") from exc


@dataclass(frozen=True)
class TritonEndpoint(TritonModelControl):
    """A tritonserver this process did not start (e.g. the running local stack)."""

    grpc_url: str
    http_url: str


class TritonServer(ServerProcess, TritonModelControl):
    """tritonserver with explicit model control on 127.0.0.1; state and triton.log under `<state_dir>/triton`."""

    name = "triton"
    start_timeout = 120.0  # models named in load_models load before the server answers
    stop_grace = 15.0  # Triton drains in-flight requests for up to --exit-timeout-secs first

    def __init__(
        self,
        state_dir: Path,
        model_repository: Path,
        grpc_port: int | None = None,
        http_port: int | None = None,
        metrics_port: int | None = None,
        extra_args: Sequence[str] = (),
        load_models: Sequence[str] = (),
    ) -> None:
        super().__init__(state_dir)
        self.model_repository = Path(model_repository).absolute()
        self.grpc_port = pick_port(grpc_port)
        self.http_port = pick_port(http_port)
        self.metrics_port = pick_port(metrics_port)
        self.extra_args = tuple(extra_args)
        self.load_models = tuple(load_models)
        # The Python backend keeps shared memory in /dev/shm under this prefix: unique per server so
        # several servers on one host never collide, and a killed one can be cleaned up after.
        self.shm_prefix = f"kestrel_triton_{uuid4().hex[:12]}_"
        self._install: TritonInstall | None = None

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_url(self) -> str:  # type: ignore[override]  # the base only needs it readable
        return f"http://{HOST}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    async def __aenter__(self) -> TritonServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _prepare(self) -> None:
        # First run creates the venv (tens of seconds with a cold uv cache); later runs take milliseconds.
        self._install = await asyncio.to_thread(ensure_install)

    def _command(self) -> list[str]:
        assert self._install is not None, "_prepare runs first"
        return [
            str(self._install.server_bin),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={self._install.backends_dir}",
            f"--cache-directory={self._install.caches_dir}",
            "--model-control-mode=explicit",
            *(f"--load-model={name}" for name in self.load_models),
            f"--http-address={HOST}",
            f"--http-port={self.http_port}",
            f"--grpc-address={HOST}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={HOST}",
            f"--metrics-port={self.metrics_port}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            "--exit-timeout-secs=5",
            *_CPU_ARGS,
            *self.extra_args,
        ]

    def _popen_options(self) -> dict[str, Any]:
        assert self._install is not None, "_prepare runs first"
        return {"cwd": self.home, "env": self._install.env(os.environ)}

    async def _probe(self) -> None:
        status, _ = await asyncio.to_thread(_http, "GET", f"{self.http_url}/v2/health/ready", None, 1.0)
        if status != 200:
            raise ComponentError(self.name, f"/v2/health/ready answered {status}")

    async def _wait_ready(self) -> None:
        try:
            await super()._wait_ready()
        except ComponentError as exc:
            # The reason (e.g. a model that failed to load) scrolls out of the tail behind Triton's tables.
            reasons = _error_lines(self.log_path)
            if not reasons:
                raise
            raise ComponentError(self.name, f"failed to start:\n{reasons}", self.log_path) from exc

    async def stop(self) -> None:
        """SIGTERM (SIGKILL to the process group after the grace), then clear what a crash leaves behind."""
        pid = self.pid
        await super().stop()
        if pid is None:
            return
        _kill_group(pid)  # Python backend stubs orphaned if tritonserver crashed or was killed
        for leftover in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            leftover.unlink(missing_ok=True)


def _error_lines(log_path: Path, limit: int = 10) -> str:
    """Triton's own error lines (glog "E" severity, "error:"), minus the CUDA noise of a CPU-only host."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if _GLOG_ERROR.match(line) or line.startswith("error:")]
    return "\n".join([line for line in errors if "CudaDriverHelper" not in line][-limit:])


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is already gone
        pass


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _reason(body: Any) -> str:
    return body.get("error", str(body)) if isinstance(body, dict) else str(body)
