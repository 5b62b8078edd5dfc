"""Entry point: `kestrel-inference` / `python -m kestrel.inference`."""

from __future__ import annotations

from kestrel.common.service import serve
from kestrel.inference.app import InferenceApp
from kestrel.inference.settings import InferenceSettings


def main() -> None:
    """Exits 1 when the consumer loop failed, so the supervisor restarts the process."""
    serve("inference", InferenceSettings, InferenceApp)


if __name__ == "__main__":
    main()
