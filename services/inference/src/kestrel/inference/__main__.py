"""Entry points: `kestrel-inference` (the gRPC API; `python -m kestrel.inference`), `kestrel-inference-scorer`."""

from kestrel.inference.service import API, SCORER


def main() -> None:
    """The gRPC InferenceService; exits 1 when Kafka never answered within the start-up deadline."""
    API.main()


def scorer() -> None:
    """The stream scorer; exits 1 when its consumer loop failed, so the supervisor restarts the process."""
    SCORER.main()


if __name__ == "__main__":
    main()
