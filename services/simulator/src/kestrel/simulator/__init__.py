"""Kestrel simulator: realistic card traffic with fraud patterns, late labels and drift scenarios."""

from kestrel.simulator.generator import Batch, Generator, GeneratorConfig
from kestrel.simulator.runner import RunConfig, run
from kestrel.simulator.summary import Summary

__all__ = ["Batch", "Generator", "GeneratorConfig", "RunConfig", "Summary", "run"]
