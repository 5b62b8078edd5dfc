"""Counting fuzz outcomes per target and printing them as the table docs/reliability.md shows."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

REPORT_ENV = "KESTREL_FUZZ_REPORT"


class Outcome(Enum):
    OK = "ok"
    CLEAR_ERROR = "clear error"
    DEAD_LETTER = "dead letter"
    UNCLEAR = "crash/unclear"


@dataclass
class Tally:
    """Outcomes of one target; `unclear` keeps a short description of each bad one for the report."""

    target: str
    counts: Counter[Outcome] = field(default_factory=Counter)
    unclear: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome, detail: str = "") -> None:
        self.counts[outcome] += 1
        if outcome is Outcome.UNCLEAR:
            self.unclear.append(detail[:3000])

    @property
    def inputs(self) -> int:
        return sum(self.counts.values())

    def row(self) -> dict[str, int | str]:
        return {"target": self.target, "inputs": self.inputs} | {o.value: self.counts[o] for o in Outcome}

    def save(self) -> None:
        """Append this target's row to $KESTREL_FUZZ_REPORT (JSON lines) when a full run collects them."""
        if path := os.environ.get(REPORT_ENV):
            with Path(path).open("a") as out:
                out.write(json.dumps(self.row() | {"unclear_inputs": self.unclear}) + "\n")


COLUMNS = ("target", "inputs", *(o.value for o in Outcome))


def table(rows: list[dict[str, int | str]]) -> str:
    """A Markdown table of the rows with a total line."""
    total: dict[str, int | str] = {"target": "**total**"} | {c: sum(int(r[c]) for r in rows) for c in COLUMNS[1:]}
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in [*rows, total]]
    return "\n".join(lines)
