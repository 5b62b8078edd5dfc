"""The drill's counting (pure): ids sent against the copies each topic or store holds of them."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tally:
    """What one topic or store holds of the ids it should hold once each.

    `held`: distinct expected ids found; `copies`: records or rows found for them; `lost`: expected ids not
    found; `identical`/`differing`: extra copies (beyond the first) of an id, all alike or not;
    `foreign`: records of ids nobody expected (another run's, or the drill's own bug)."""

    name: str
    held: int
    copies: int
    lost: int
    identical: int
    differing: int
    foreign: int = 0

    @property
    def duplicated(self) -> int:
        return self.identical + self.differing


def tally(name: str, expected: Collection[str] | None, found: Iterable[tuple[str, Hashable]]) -> Tally:
    """Counts `found` (id, content fingerprint) pairs against the `expected` ids; with `expected` None every id
    found is expected and nothing can be lost (alerts, lifecycle events: only their duplicates are counted)."""
    contents: dict[str, list[Hashable]] = defaultdict(list)
    foreign = 0
    for ident, content in found:
        if expected is None or ident in expected:
            contents[ident].append(content)
        else:
            foreign += 1
    identical = differing = 0
    for versions in contents.values():
        extra = len(versions) - 1
        if len(set(versions)) == 1:
            identical += extra
        else:
            differing += extra
    lost = 0 if expected is None else len(expected) - len(contents)
    copies = sum(len(c) for c in contents.values())
    return Tally(name, len(contents), copies, lost, identical, differing, foreign)


def fingerprint(record: Mapping[str, Any], volatile: Collection[str] = ()) -> str:
    """A record's content without the fields a faithful replay may change (wall-clock times, latencies)."""
    kept = {k: v for k, v in record.items() if k not in volatile}
    return json.dumps(kept, sort_keys=True, default=repr)


def dead_letters(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Dead letters per "service: error_type", most frequent first."""
    counts = Counter(f"{r['service']}: {r['error_type']}" for r in records)
    return dict(counts.most_common())


@dataclass(frozen=True)
class Expectation:
    """What a store or topic may hold: topics may repeat a record identically (at-least-once delivery);
    stores and exactly-once streams may not repeat at all. Nothing may be lost."""

    store: bool


def problems(tallies: Iterable[Tally], expectations: Mapping[str, Expectation]) -> list[str]:
    """Each broken promise, in words; empty when the drill passed."""
    found = []
    for t in tallies:
        if t.lost:
            found.append(f"{t.name}: {t.lost} lost")
        if t.differing:
            found.append(f"{t.name}: {t.differing} duplicates with differing content")
        if t.identical and expectations.get(t.name, Expectation(store=True)).store:
            found.append(f"{t.name}: {t.identical} duplicates (must hold each id once)")
    return found
