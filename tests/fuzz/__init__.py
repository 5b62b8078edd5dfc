"""Bad-input fuzzing of Kestrel's gRPC APIs and consumed topics (issue 14); `python -m tests.fuzz --help`."""
