"""Entry points: `kestrel-inference` (the gRPC API; `python -m kestrel.inference`), `kestrel-inference-scorer`."""

from __future__ import annotations

from kestrel.common.service import serve
from kestrel.inference.app import ApiApp, StreamApp
from kestrel.inference.settings import InferenceSettings


def main() -> None:
    """The gRPC InferenceService."""
    serve("inference", InferenceSettings, ApiApp)


def scorer() -> None:
    """The stream scorer; exits 1 when its consumer loop failed, so the supervisor restarts the process."""
    serve("inference-scorer", InferenceSettings, StreamApp)


if __name__ == "__main__":
    main()
