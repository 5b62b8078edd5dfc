"""Entry point: `kestrel-feature-writer` / `python -m kestrel.feature_writer`."""

from __future__ import annotations

from kestrel.common.service import serve
from kestrel.feature_writer.app import FeatureWriterApp
from kestrel.feature_writer.settings import FeatureWriterSettings


def main() -> None:
    """Exits 1 when the consumer loop failed, so the supervisor restarts the process."""
    serve("feature-writer", FeatureWriterSettings, FeatureWriterApp)


if __name__ == "__main__":
    main()
