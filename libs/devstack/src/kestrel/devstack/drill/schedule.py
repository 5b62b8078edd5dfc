"""The drill's fault schedule (pure): parsed from `--faults`, placed in time by the seed, so a run replays."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("kill", "stop")
"""kill: SIGKILL a service's process (the supervisor restarts it); stop: stop a dependency for a while."""
DEPENDENCIES = ("kafka", "redis", "postgres", "triton")
DEFAULT_STOP_S = 30.0


@dataclass(frozen=True)
class Fault:
    at_s: float
    """Seconds after traffic starts."""
    kind: str
    target: str
    """A service (kill) or a dependency (stop)."""
    down_s: float = 0.0
    """How long a stopped dependency stays down."""

    def __str__(self) -> str:
        down = f" for {self.down_s:g} s" if self.kind == "stop" else ""
        return f"{self.kind} {self.target}{down} at {self.at_s:.1f} s"


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    target: str
    times: int = 1
    down_s: float = 0.0


def parse(text: str, services: Sequence[str]) -> list[FaultSpec]:
    """`kill:all*10,kill:features*2,stop:redis/30` -> specs; `all` means every service given. ValueError names
    the part it cannot read."""
    specs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        kind, sep, rest = part.partition(":")
        target, _, down = rest.partition("/")
        target, _, times = target.partition("*")
        if not sep or kind not in KINDS or not target or not (times or "1").isdigit():
            raise ValueError(f"--faults {part!r}: expected kill:SERVICE[*N] or stop:DEPENDENCY[*N][/SECONDS]")
        known = services if kind == "kill" else DEPENDENCIES
        targets = list(known) if target == "all" else [target]
        if unknown := [t for t in targets if t not in known]:
            raise ValueError(f"--faults {part!r}: unknown {kind} target {unknown[0]!r}; known: {', '.join(known)}")
        seconds = float(down) if down else (DEFAULT_STOP_S if kind == "stop" else 0.0)
        specs += [FaultSpec(kind, t, int(times or 1), seconds) for t in targets]
    return specs


def plan(specs: Sequence[FaultSpec], seed: int, start_s: float, end_s: float) -> list[Fault]:
    """Every fault of `specs` in a seeded order, spread evenly over [start_s, end_s) with seeded jitter, each
    one after the previous one's outage has ended."""
    faults = [spec for spec in specs for _ in range(spec.times)]
    rng = random.Random(seed)
    rng.shuffle(faults)
    if not faults:
        return []
    gap = (end_s - start_s) / len(faults)
    out: list[Fault] = []
    free_at = start_s
    for i, spec in enumerate(faults):
        at = max(start_s + gap * (i + rng.uniform(0.0, 0.5)), free_at)
        out.append(Fault(round(at, 2), spec.kind, spec.target, spec.down_s))
        free_at = at + spec.down_s
    return out
