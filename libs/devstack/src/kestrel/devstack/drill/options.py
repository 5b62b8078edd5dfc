"""What one drill run does (light: `kestrel-stack --help` imports it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    seed: int = 1
    rate: int = 300
    duration_s: float = 60.0
    faults: str = "kill:all"
    cards: int = 2000
    drain_s: float = 300.0
    services: tuple[str, ...] = ()
    """Services to run when the drill starts its own stack (default: all); ignored on a running stack."""
