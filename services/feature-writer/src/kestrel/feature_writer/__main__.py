"""Entry point: `kestrel-feature-writer` / `python -m kestrel.feature_writer`."""

from kestrel.feature_writer.service import SERVICE


def main() -> None:
    """Exits 1 when Kafka never answered within the start-up deadline or the consumer loop failed."""
    SERVICE.main()


if __name__ == "__main__":
    main()
