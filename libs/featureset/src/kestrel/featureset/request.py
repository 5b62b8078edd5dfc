"""Request-time features: the vector the stream would compute for a request's event, from the online store.

The online store holds, per entity, the vector the stream computed for its newest event and the entity's event
log (the events the stream's state holds). A Predict request brings a new event that the stream has usually not
seen. Like Feast's on-demand features, inference computes its vector at request time, so serving sees what
training saw: exactly, by the stream's own code over the log (`from_log`); where the log cannot be trusted (a
store upgraded in place, for a day), by advancing the stored vector (`merge`, docs/features.md "Request-time
features" lists its rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kestrel.common.errors import InvalidArgumentError
from kestrel.featureset.definition import (
    EVENT_ID,
    FLAT_SPREAD,
    NUMERIC_SOURCE,
    FeatureDefinitionError,
    FeatureSet,
    FeatureSpec,
)
from kestrel.featureset.state import Event, FeatureComputer


class EventColumns(Protocol):
    """An event log column by column, oldest first (kestrel.online_store.LogColumns fits): numeric and
    categorical columns in the sorted source order of FeatureSet.numeric_sources and .categorical_sources."""

    @property
    def times(self) -> Sequence[int]: ...
    @property
    def ids(self) -> Sequence[str]: ...
    @property
    def numbers(self) -> Sequence[Sequence[float]]: ...
    @property
    def categories(self) -> Sequence[Sequence[str]]: ...


_NEVER = np.iinfo(np.int64).max
"""Δ of an entity not found: beyond every window, so every feature takes its first-event value."""
_HOUR_MS = 3_600_000
_PRIOR = ("ratio_to_mean", "zscore")
_DEFAULT = object()
_RULES = {
    # aggregation: (alone: base, coef on x), (advanced, 0 <= Δ < W: keep stored?, inc, step on x); the plan
    # then overwrites max, min, mean, std, seconds_since_previous, ratio_to_mean, zscore where it can.
    "value": (0, 1, 0, 0, 1),
    "hour_of_day": (0, 0, 0, 0, 0),
    "count": (1, 0, 1, 1, 0),
    "sum": (0, 1, 1, 0, 1),
    "mean": (0, 1, 1, 0, 0),
    "std": (0, 0, 1, 0, 0),
    "max": (0, 1, 1, 0, 0),
    "min": (0, 1, 1, 0, 0),
    "distinct": (1, 0, 1, 0, 0),
    "is_new": (1, 0, 0, _DEFAULT, 0),
    "seconds_since_previous": (_DEFAULT, 0, 1, 0, 0),
    "ratio_to_mean": (_DEFAULT, 0, 0, _DEFAULT, 0),
    "zscore": (_DEFAULT, 0, 0, _DEFAULT, 0),
}
"""Without siblings, mean and std keep the stored value and ratio_to_mean and zscore their default."""
_ALWAYS_EXACT = frozenset({"value", "hour_of_day", "count", "sum", "max", "min", "seconds_since_previous"})
_WITH_SIBLINGS = frozenset({"mean", "std", "ratio_to_mean", "zscore"})
"""Exact when the plan finds their siblings."""


def _cols(indices: list[int]) -> np.ndarray:
    return np.array(indices, dtype=np.intp)


@dataclass(frozen=True)
class _Plan:
    """Column indices per rule, compiled once per feature set; siblings are aligned with their feature."""

    hour: np.ndarray
    max: np.ndarray
    min: np.ndarray
    ssp: np.ndarray
    mean: np.ndarray
    mean_n: np.ndarray
    std: np.ndarray
    std_n: np.ndarray
    std_m: np.ndarray
    prior: np.ndarray
    """ratio_to_mean and zscore columns, computed as (x - shift * mean) / den."""
    prior_m: np.ndarray
    prior_den: np.ndarray
    prior_shift: np.ndarray
    prior_floor: np.ndarray
    prior_w: np.ndarray
    prior_default: np.ndarray


class RequestFeatures:
    """Builds the request event's vector: from the entity's event log (`from_log`: exact), or from the stored
    vector of the entity's newest processed event (`merge`: the fallback, rules below).

    With Δ = t - t0 and W a feature's window (ms):

    - not found, or Δ >= W: the stored events are all out of (t - W, t], so the feature is that of the event
      alone (count 1, sum = mean = max = min = value, std 0, distinct 1, is_new 1, seconds_since_previous,
      ratio_to_mean and zscore at their defaults): exact.
    - 0 <= Δ < W: count + 1, sum + x, max/min with x, mean and std by Welford's update from the same
      window's count (and mean); seconds_since_previous = Δ / 1000; ratio_to_mean and zscore against the
      stored mean and std of the same source and window (those are the prior events). Exact unless a stored
      event fell out of the window in (t0 - W, t - W] (it still counts: count, sum and max too high, min low).
    - Δ < 0 (the stored vector is newer than the event: a late or replayed event): every windowed feature
      as stored; value and hour_of_day from the event; ratio_to_mean and zscore from the event against the
      stored mean and std.
    - value and hour_of_day always come from the event.
    - inside the window, distinct keeps the stored value (a lower bound) and is_new takes its default.

    "Exact" assumes the stored vector is that of the newest event the stream had seen (the store keeps the
    newest by event time); an out-of-order event the stream applied after it is missing from the windows.

    A mean without a count of the same window, a std without that count and mean, a ratio_to_mean without
    the mean, or a zscore without mean and std cannot be advanced: inside the window the first two keep the
    stored value and the last two take their default; such features are in `approximate` too.
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = fs = feature_set
        unknown = sorted({f.aggregation for f in fs.features} - _RULES.keys())
        if unknown:
            raise FeatureDefinitionError(f"feature set {fs.name!r}: no request-time rule for {', '.join(unknown)}")
        numeric = sorted({f.source for f in fs.features if f.aggregation in NUMERIC_SOURCE})
        if len(numeric) > 1:
            raise FeatureDefinitionError(
                f"feature set {fs.name!r}: request features take one numeric source "
                f"(the event's amount), this set reads {', '.join(numeric)}"
            )
        self.source = numeric[0] if numeric else None
        """The event field `merge` receives as `amount`."""
        self._plan, self.exact, self.approximate = _compile(fs)
        """Which features `merge` reproduces exactly, and which not (`from_log` reproduces all of them)."""
        self._templates(fs)
        self.computer = FeatureComputer(fs)
        self.longest_ms = fs.max_window_s * 1000

    def from_log(self, log: EventColumns, event: Event) -> list[float]:
        """The event's vector as the stream computes it when its state holds the log's events (the request's
        own event, if held, left out), in definition order. Exact whenever the log holds every event of the
        entity after the event's time minus the longest window (`EventLog.complete_after`)."""
        own = event[EVENT_ID]
        if own in log.ids:  # a re-score of an event the log holds: count it once, as the request
            keep = [i for i, e in enumerate(log.ids) if e != own]
            times = [log.times[i] for i in keep]
            numeric = [[col[i] for i in keep] for col in log.numbers]
            categorical = [[col[i] for i in keep] for col in log.categories]
        else:  # copies: state_from takes its lists, and the log is the caller's
            times, numeric, categorical = list(log.times), [*map(list, log.numbers)], [*map(list, log.categories)]
        return self.computer.features_at(self.computer.state_from(times, numeric, categorical), event)

    def _templates(self, fs: FeatureSet) -> None:
        """Per-column constants: alone = base + coef*x, advanced = (stored where keep else 0) + inc + step*x."""
        table = np.array(
            [[f.default if v is _DEFAULT else v for v in _RULES[f.aggregation]] for f in fs.features], dtype=np.float64
        )
        self._base, self._coef, keep, self._inc, self._step = table.T.copy()
        self._keep = keep.astype(bool)
        self._window_ms = np.array([(f.window_s or 0) * 1000 for f in fs.features], dtype=np.int64)
        self._late_as_stored = np.array([f.window_s is not None and f.aggregation not in _PRIOR for f in fs.features])
        self._width = len(fs.features)

    def merge(
        self,
        stored: np.ndarray,
        found: np.ndarray,
        stored_time_ms: np.ndarray,
        amount: np.ndarray,
        event_time_ms: np.ndarray,
        included: np.ndarray | None = None,
    ) -> np.ndarray:
        """The vectors of the request events, a new float64 (n, F) matrix in definition order.

        stored: float64 (n, F), definition order, defaults where not found; found: bool (n,);
        stored_time_ms: int64 (n,), event time of the stored vector (ignored where not found);
        amount: float64 (n,), the request events' `self.source` field; event_time_ms: int64 (n,);
        included: bool (n,) or None, rows whose stored vector already includes this very event (same event
        id): returned as stored. Δ < 0 rows (stored newer than the event) keep every windowed feature as
        stored and take value, hour_of_day, ratio_to_mean and zscore from the event (against the stored
        mean and std); see the class docstring for the rest.
        """
        stored = np.asarray(stored, dtype=np.float64)
        if stored.ndim != 2 or stored.shape[1] != self._width:
            raise InvalidArgumentError("stored", f"expected shape (n, {self._width}), got {stored.shape}")
        t = np.asarray(event_time_ms, dtype=np.int64)
        delta = np.where(found, t - np.asarray(stored_time_ms, dtype=np.int64), _NEVER)
        x = np.asarray(amount, dtype=np.float64)[:, None]
        alone = delta[:, None] >= self._window_ms
        out = np.where(alone, self._base + self._coef * x, self._advanced(stored, x, delta))
        late = delta < 0
        if late.any():
            out = np.where(late[:, None] & self._late_as_stored, stored, out)
        p = self._plan
        if p.hour.size:
            out[:, p.hour] = (t // _HOUR_MS % 24)[:, None]
        if p.prior.size:
            self._prior(out, stored, x, delta)
        if included is not None:
            included = np.asarray(included, dtype=bool)
            if included.any():
                out[included] = stored[included]
        return out

    def _advanced(self, stored: np.ndarray, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Every feature for 0 <= Δ < W: the stored aggregate with the event added."""
        p = self._plan
        adv = np.where(self._keep, stored, 0.0) + self._inc + self._step * x  # where: 0 * inf would be NaN
        if p.max.size:
            adv[:, p.max] = np.maximum(stored.take(p.max, axis=1), x)
        if p.min.size:
            adv[:, p.min] = np.minimum(stored.take(p.min, axis=1), x)
        if p.ssp.size:
            adv[:, p.ssp] = (delta / 1000)[:, None]
        if p.mean.size:
            m = stored.take(p.mean, axis=1)
            adv[:, p.mean] = m + (x - m) / (stored.take(p.mean_n, axis=1) + 1.0)
        if p.std.size:
            n, m, s = stored.take(p.std_n, axis=1), stored.take(p.std_m, axis=1), stored.take(p.std, axis=1)
            d = x - m
            # Welford: M2' = M2 + (x - m)(x - m') = n s^2 + n d^2 / (n + 1), so std'^2 = M2' / (n + 1).
            adv[:, p.std] = np.sqrt(n * (s * s + d * d / (n + 1.0)) / (n + 1.0))
        return adv

    def _prior(self, out: np.ndarray, stored: np.ndarray, x: np.ndarray, delta: np.ndarray) -> None:
        """ratio_to_mean = (x - 0) / mean and zscore = (x - mean) / std over the prior events, which inside the
        window are exactly the stored vector's window; outside it there are none and the default applies."""
        p = self._plan
        m, den = stored.take(p.prior_m, axis=1), stored.take(p.prior_den, axis=1)
        # ratio: floor 0, so any nonzero mean; zscore: FLAT_SPREAD. One prior event has std exactly 0
        # (offline and stream alike), so zscore's "at least two prior events" holds without a count.
        ok = (delta[:, None] < p.prior_w) & (np.abs(den) > p.prior_floor * np.maximum(np.abs(m), 1.0))
        out[:, p.prior] = np.where(ok, (x - p.prior_shift * m) / np.where(ok, den, 1.0), p.prior_default)


def _compile(fs: FeatureSet) -> tuple[_Plan, list[str], list[str]]:
    """The plan, and which features it reproduces exactly."""
    counts: dict[int | None, int] = {}
    moments: dict[tuple[str, int | None, str], int] = {}
    for i, f in enumerate(fs.features):
        if f.aggregation == "count":  # a count counts events whatever field it names
            counts.setdefault(f.window_s, i)
        elif f.aggregation in ("mean", "std"):
            moments.setdefault((f.source, f.window_s, f.aggregation), i)
    rows: dict[str, list[list[int]]] = {}
    exact = []
    for i, f in enumerate(fs.features):
        siblings = _siblings(f, counts, moments)
        if siblings is not None:
            rows.setdefault(f.aggregation, []).append([i, *siblings])
        if f.aggregation in _ALWAYS_EXACT or (f.aggregation in _WITH_SIBLINGS and siblings is not None):
            exact.append(f.name)
    defaults = np.array(fs.defaults)
    window_ms = np.array([(f.window_s or 0) * 1000 for f in fs.features], dtype=np.int64)

    def take(agg: str, k: int) -> np.ndarray:
        return _cols([r[k] for r in rows.get(agg, [])])

    ratio, zscore = rows.get("ratio_to_mean", []), rows.get("zscore", [])
    prior = [r[0] for r in ratio + zscore]
    plan = _Plan(
        hour=take("hour_of_day", 0),
        max=take("max", 0),
        min=take("min", 0),
        ssp=take("seconds_since_previous", 0),
        mean=take("mean", 0),
        mean_n=take("mean", 1),
        std=take("std", 0),
        std_n=take("std", 1),
        std_m=take("std", 2),
        prior=_cols(prior),
        prior_m=_cols([r[1] for r in ratio + zscore]),
        prior_den=_cols([r[1] for r in ratio] + [r[2] for r in zscore]),
        prior_shift=np.array([0.0] * len(ratio) + [1.0] * len(zscore)),
        prior_floor=np.array([0.0] * len(ratio) + [FLAT_SPREAD] * len(zscore)),
        prior_w=window_ms[prior],
        prior_default=defaults[prior],
    )
    return plan, exact, [n for n in fs.names if n not in exact]


def _siblings(
    f: FeatureSpec, counts: dict[int | None, int], moments: dict[tuple[str, int | None, str], int]
) -> list[int] | None:
    """Columns the feature's rule reads besides its own; None where the rule cannot apply (a sibling is missing)."""
    needs = {
        "mean": [counts.get(f.window_s)],
        "std": [counts.get(f.window_s), moments.get((f.source, f.window_s, "mean"))],
        "ratio_to_mean": [moments.get((f.source, f.window_s, "mean"))],
        "zscore": [moments.get((f.source, f.window_s, "mean")), moments.get((f.source, f.window_s, "std"))],
    }.get(f.aggregation, [])
    present = [n for n in needs if n is not None]
    return present if len(present) == len(needs) else None
