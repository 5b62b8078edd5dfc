"""Kestrel benchmarks: each row next to the raw baseline measured in the same run."""
