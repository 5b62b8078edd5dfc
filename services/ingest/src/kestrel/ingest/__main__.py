"""Entry point: `kestrel-ingest` / `python -m kestrel.ingest`."""

from kestrel.ingest.service import SERVICE


def main() -> None:
    """Exits 1 when Kafka never answered within the start-up deadline or the producer failed fatally."""
    SERVICE.main()


if __name__ == "__main__":
    main()
