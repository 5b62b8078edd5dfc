"""Entry point: `kestrel-features` / `python -m kestrel.features`."""

from kestrel.features.service import SERVICE


def main() -> None:
    """Exits 1 when Kafka never answered within the start-up deadline or the stream loop failed."""
    SERVICE.main()


if __name__ == "__main__":
    main()
