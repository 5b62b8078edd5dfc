"""Triton's repository API (explicit model control) over HTTP: the load a rollout asks for."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request

from kestrel.common.errors import KestrelError


class TritonLoadError(KestrelError):
    """Triton refused the load, or did not answer."""


class TritonRepository:
    def __init__(self, http_url: str, timeout_s: float = 300.0) -> None:
        self.http_url, self.timeout_s = http_url.rstrip("/"), timeout_s

    async def load_model(self, name: str) -> None:
        """Load (or reload) `name` from the repository; TritonLoadError with Triton's reason on failure."""
        await asyncio.to_thread(self._load, name)

    def _load(self, name: str) -> None:
        url = f"{self.http_url}/v2/repository/models/{urllib.parse.quote(name, safe='')}/load"
        request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s):
                return
        except urllib.error.HTTPError as exc:
            body = exc.read()
            reason = json.loads(body).get("error", body.decode()) if body else exc.reason
            raise TritonLoadError(f"load of {name!r} failed ({exc.code}): {reason}") from exc
        except OSError as exc:
            raise TritonLoadError(f"tritonserver at {self.http_url} unreachable: {exc}") from exc
