"""Card-like feature rows from a fixed generator, for the statistical proofs and the bench; no I/O."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special, stats

from kestrel.featureset import FeatureSet, FeatureSpec

Transform = Callable[[np.ndarray], np.ndarray]
HOURS = np.r_[np.full(7, 0.01), np.full(17, 0.93 / 17)]
"""Share of card traffic per hour of day: quiet nights, busy days."""
_WINDOW_RATE = {60: 0.3, 3600: 2.0, 86400: 8.0}
"""Mean events per card in the trailing window: counts and distinct counts scale with it."""
_NEW_RATE = {"merchant_new_24h": 0.12, "country_new_24h": 0.03, "channel_new_24h": 0.2}


def _discrete(shares: np.ndarray) -> Transform:
    """Latent normal -> the value whose cumulative share first exceeds its normal quantile."""
    cdf = np.cumsum(shares)[:-1]
    return lambda z: np.searchsorted(cdf, special.ndtr(z), side="right").astype(np.float64)


def _transform(spec: FeatureSpec) -> Transform:
    rate = _WINDOW_RATE.get(spec.window_s or 0, 1.0)
    sigma = 0.8 + 0.2 * np.log10(max(spec.window_s or 1, 1))
    match spec.aggregation:
        case "hour_of_day":
            return _discrete(HOURS)
        case "count" | "distinct":
            return _discrete(stats.nbinom.pmf(np.arange(200), 2, 2 / (2 + rate)))
        case "is_new":
            p = _NEW_RATE.get(spec.name, 0.1)
            return _discrete(np.array([1 - p, p]))
        case "seconds_since_previous":
            return lambda z: -3600.0 * special.log_ndtr(-z)
        case "zscore":
            return lambda z: z * np.exp(0.15 * z * z)
        case "ratio_to_mean":
            return lambda z: np.exp(0.5 * z)
        case _:
            return lambda z: np.exp(3.5 + sigma * z) * rate ** (spec.aggregation == "sum")


class CardLike:
    """Independent columns shaped like the card features: heavy-tailed amounts (lognormal), over-dispersed counts
    (negative binomial), bools, hour of day with a daily profile, heavy-tailed z-scores.

    Each column is a fixed increasing function of a standard normal. A shift of d standard deviations moves that
    normal by d: exactly d sd for a normal feature, and the same amount of evidence (the same PSI over deciles,
    the same KS statistic) for a skewed or discrete one, where adding d sd to the values would not be comparable
    (on a lognormal amount 0.1 sd is a large move of the bulk; on a count it only breaks the integers)."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.names = tuple(f.name for f in feature_set.features)
        self._transforms = [_transform(f) for f in feature_set.features]

    def rows(self, rng: np.random.Generator, m: int, shift: np.ndarray | None = None) -> np.ndarray:
        """m rows (m, F); `shift` (F,) moves each column's latent normal by that many standard deviations."""
        z = rng.standard_normal((len(self.names), m))
        if shift is not None:
            z += shift[:, None]
        return np.column_stack([t(col) for t, col in zip(self._transforms, z)])

    def shift(self, sds: float, features: int, seed: int = 0) -> np.ndarray:
        """A shift of `sds` standard deviations on `features` columns drawn at random (fixed by seed)."""
        chosen = np.random.default_rng(seed).choice(len(self.names), size=features, replace=False)
        out = np.zeros(len(self.names))
        out[chosen] = sds
        return out
