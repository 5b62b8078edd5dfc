"""Kestrel benchmarks: each row next to the raw baseline measured in the same run."""

import kestrel.devstack  # noqa: F401 - first, before grpc: it turns gRPC's fork support off for the processes it starts
