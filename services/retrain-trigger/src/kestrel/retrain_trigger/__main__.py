"""Entry point: `kestrel-retrain-trigger` / `python -m kestrel.retrain_trigger`."""

from kestrel.retrain_trigger.service import SERVICE


def main() -> None:
    """Exits 1 when Kafka never answered within the start-up deadline or the faust app failed."""
    SERVICE.main()


if __name__ == "__main__":
    main()
