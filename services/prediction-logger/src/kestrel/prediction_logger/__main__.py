"""Entry point: `kestrel-prediction-logger` / `python -m kestrel.prediction_logger`."""

from kestrel.prediction_logger.service import SERVICE


def main() -> None:
    """Exits 1 when Kafka or PostgreSQL never answered within the start-up deadline or the consumer loop failed."""
    SERVICE.main()


if __name__ == "__main__":
    main()
