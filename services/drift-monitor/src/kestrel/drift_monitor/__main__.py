"""Entry point: `kestrel-drift-monitor` / `python -m kestrel.drift_monitor`."""

from kestrel.drift_monitor.service import SERVICE


def main() -> None:
    """Exits 1 when Kafka or PostgreSQL never answered within the start-up deadline or the stream loop failed."""
    SERVICE.main()


if __name__ == "__main__":
    main()
