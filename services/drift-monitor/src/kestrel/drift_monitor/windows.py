"""Tumbling event-time windows per model version: counts, the watermark, window closes and late counts. No I/O.

State is kept per source partition (it moves with the partition and is restored from the changelog), but a
window closes for all partitions at once: the watermark is the oldest of the partitions' newest event times,
less the allowed lateness, so a window closes only when every partition is past its end (plus lateness). A
partition more than `idle_ms` of event time behind the newest one, or one that has seen nothing yet, holds the
watermark back to that distance only: a silent partition delays closes by at most `idle_ms`, and at start-up
the first partitions read cannot close windows the others still fill. A prediction whose window had already
closed when it arrived is counted as late for its model version and reported with that version's next closed
window; it is never added to a closed window.

With `min_count` above 1 a model version's closed windows are reported together once they hold that many
predictions: they stay in the state until then, and are cut in start order as soon as the running count reaches
it, so the same closed windows make the same reports however the batches fell (a replay repeats its report ids).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

Version = tuple[str, str]
"""(model_name, model_version)."""

MAX_FUTURE_SKEW_MS = 300_000
"""How far past the wall clock an event time may be: ingest's own limit (kestrel.common.validation.Limits)."""


def unwindowable(event_time: int, now_ms: int) -> str | None:
    """Why a record's event time cannot be counted, or None: a far-future one would carry the watermark past every
    open window (every later record late), and one before the epoch opens a window no report can date."""
    if event_time < 0:
        return f"event_time: {event_time} is before 1970-01-01"
    if event_time > now_ms + MAX_FUTURE_SKEW_MS:
        return f"event_time: {event_time} is more than {MAX_FUTURE_SKEW_MS // 1000}s in the future"
    return None


@dataclass
class VersionWindows:
    """One model version's open windows in one partition, and its late predictions not yet reported."""

    open: dict[int, int] = field(default_factory=dict)
    """Window start (ms) -> predictions counted."""
    late: int = 0


@dataclass
class PartitionWindows:
    """One source partition's part of the windows state."""

    offset: int = 0
    """Next source offset not yet applied: records below it (replays after a restart) change nothing."""
    newest: int | None = None
    """Newest event time (ms) seen in the partition."""
    closed_until: int | None = None
    """Every window ending at or before this instant (ms) is closed."""
    versions: dict[Version, VersionWindows] = field(default_factory=dict)


@dataclass(frozen=True)
class Close:
    """A window that closed: what the report of it needs from the stream."""

    model_name: str
    model_version: str
    start: int
    end: int
    count: int
    """Predictions of the window counted on the stream (the report reads the rows from the prediction log)."""
    late: int
    """Late predictions of this model version since its previous report."""
    offsets: dict[int, int]
    """Partition -> next source offset applied when the window closed: the log must be written up to these."""
    closed_at: int
    """Wall clock (ms) of the decision."""

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Close:
        doc = json.loads(data)
        return cls(**{**doc, "offsets": {int(p): o for p, o in doc["offsets"].items()}})


@dataclass(frozen=True)
class Windows:
    """The window rule: tumbling windows of `size_ms` aligned on the epoch, closed `lateness_ms` after their end."""

    size_ms: int
    lateness_ms: int
    idle_ms: int
    min_count: int = 1
    """Predictions a report needs: consecutive closed windows of a version are merged until they hold this many."""

    def start(self, event_time: int) -> int:
        return event_time - event_time % self.size_ms

    def add(self, part: PartitionWindows, closed_until: int | None, version: Version, event_time: int) -> bool:
        """Count one prediction; True when its window was already closed (it is counted as late instead)."""
        part.newest = event_time if part.newest is None else max(part.newest, event_time)
        windows = part.versions.setdefault(version, VersionWindows())
        start = self.start(event_time)
        if closed_until is not None and start + self.size_ms <= closed_until:
            windows.late += 1
            return True
        windows.open[start] = windows.open.get(start, 0) + 1
        return False

    def watermark(self, parts: Mapping[int, PartitionWindows]) -> int | None:
        """The oldest newest event time over the partitions, none further than idle_ms behind the newest (a
        partition that saw nothing counts as that far behind), less the lateness; None before any event."""
        seen = [p.newest for p in parts.values() if p.newest is not None]
        if not seen:
            return None
        floor = max(seen) - self.idle_ms
        oldest = min(seen) if len(seen) == len(parts) else floor
        return max(oldest, floor) - self.lateness_ms

    def close(self, parts: Mapping[int, PartitionWindows], now_ms: int) -> list[Close]:
        """Close every open window that ends at or before the watermark, in (version, start) order."""
        mark, done = self.watermark(parts), closed_until(parts)
        if mark is None or (done is not None and mark <= done):
            return []
        offsets = {p: part.offset for p, part in sorted(parts.items())}
        closes = [
            self._close(version, parts, mark, offsets, now_ms)
            for version in sorted({v for part in parts.values() for v in part.versions})
        ]
        for part in parts.values():
            part.closed_until = mark
            part.versions = {v: w for v, w in part.versions.items() if w.open or w.late}
        return [c for version_closes in closes for c in version_closes]

    def _close(
        self, version: Version, parts: Mapping[int, PartitionWindows], mark: int, offsets: dict[int, int], now_ms: int
    ) -> list[Close]:
        held = [part.versions[version] for part in parts.values() if version in part.versions]
        starts = sorted({s for w in held for s in w.open if s + self.size_ms <= mark})
        runs = self._runs(starts, {s: sum(w.open.get(s, 0) for w in held) for s in starts})
        if not runs:
            return []
        for w in held:
            for run, _ in runs:
                for s in run:
                    w.open.pop(s, None)
        late = sum(w.late for w in held)
        for w in held:
            w.late = 0
        return [
            Close(*version, run[0], run[-1] + self.size_ms, count, late if i == 0 else 0, offsets, now_ms)
            for i, (run, count) in enumerate(runs)
        ]

    def _runs(self, starts: list[int], counts: dict[int, int]) -> list[tuple[list[int], int]]:
        """Closed windows in start order cut into runs of at least min_count predictions; the remainder waits."""
        runs: list[tuple[list[int], int]] = []
        run: list[int] = []
        total = 0
        for s in starts:
            run.append(s)
            total += counts[s]
            if total >= self.min_count:
                runs.append((run, total))
                run, total = [], 0
        return runs


def closed_until(parts: Mapping[int, PartitionWindows]) -> int | None:
    """The newest close over the partitions (all hold the same after a close; a new partition holds none)."""
    marks = [p.closed_until for p in parts.values() if p.closed_until is not None]
    return max(marks) if marks else None


def pack(part: PartitionWindows) -> bytes:
    versions = [[*v, {str(s): n for s, n in w.open.items()}, w.late] for v, w in part.versions.items()]
    doc = {"offset": part.offset, "newest": part.newest, "closed_until": part.closed_until, "versions": versions}
    return json.dumps(doc, separators=(",", ":")).encode()


def unpack(data: bytes) -> PartitionWindows:
    doc = json.loads(data)
    versions = {
        (name, ver): VersionWindows({int(s): n for s, n in counts.items()}, late)
        for name, ver, counts, late in doc["versions"]
    }
    return PartitionWindows(doc["offset"], doc["newest"], doc["closed_until"], versions)
