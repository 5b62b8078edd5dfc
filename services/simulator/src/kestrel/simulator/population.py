"""The simulated world: merchants per country and a population of cards with their own habits (numpy, seeded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kestrel.simulator import catalog
from kestrel.simulator.catalog import Category

FAVOURITES = 8
"""Merchants each card keeps returning to (its supermarket, its café, ...)."""
DAILY_MEDIAN, DAILY_SIGMA = 2.5, 0.8
"""Payments per card and day: log-normal, so a few heavy users and many occasional ones."""


def natural_rate(n_cards: int) -> float:
    """Expected payments per second of the whole population: the speed of simulated time."""
    return n_cards * DAILY_MEDIAN * float(np.exp(DAILY_SIGMA**2 / 2)) / 86_400


@dataclass(frozen=True)
class MerchantGroup:
    """Merchants of one kind laid out country by country: `per_country` consecutive rows per country."""

    base: int
    per_country: int

    def pick(self, country: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Merchant rows in the given countries; u**2 makes low rows popular (a Zipf-like long tail)."""
        return self.base + country * self.per_country + (u * u * self.per_country).astype(np.int64)

    def pick_one(self, country: int, u: float) -> int:
        """Scalar pick(): numpy on one element costs microseconds, plain arithmetic nanoseconds."""
        return self.base + country * self.per_country + int(u * u * self.per_country)


@dataclass(frozen=True)
class Merchants:
    ids: list[str]
    mcc: list[str]
    amount_factor: np.ndarray
    country: np.ndarray
    online: np.ndarray
    atm: np.ndarray
    everyday: MerchantGroup
    new: MerchantGroup
    """Kinds of business nobody used before a merchant-mix drift."""
    risky: MerchantGroup
    rows_by_mcc: dict[str, np.ndarray]

    def any_with_mcc(self, mcc: str, u: float) -> int:
        """A merchant of this category in any country (online fraud does not care where it is)."""
        rows = self.rows_by_mcc[mcc]
        return int(rows[int(u * len(rows))])


@dataclass(frozen=True)
class Cards:
    ids: list[str]
    home: np.ndarray
    """Country index (catalog.COUNTRIES) where the card was issued and mostly used."""
    travel: np.ndarray
    """The one other country this card's holder travels to."""
    mu: np.ndarray
    sigma: np.ndarray
    """Log-normal parameters of the card's everyday spend, in euros before the merchant's factor."""
    daily_rate: np.ndarray
    activity_cdf: np.ndarray
    """Cumulative share of all traffic: which card pays next is a draw against it."""
    channel_cdf: np.ndarray
    """Per card, cumulative probabilities of pos, contactless, ecommerce."""
    favourites: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Population:
    cards: Cards
    merchants: Merchants


def build_population(
    rng: np.random.Generator, n_cards: int, merchants_per_country: int = 400, card_prefix: str = "card-"
) -> Population:
    merchants = _build_merchants(rng, merchants_per_country)
    return Population(_build_cards(rng, n_cards, merchants, card_prefix), merchants)


def _draw_categories(rng: np.random.Generator, categories: tuple[Category, ...], n: int) -> np.ndarray:
    weights = np.array([c.weight for c in categories])
    drawn = rng.choice(len(categories), size=n, p=weights / weights.sum())
    # Every category exists somewhere, however small the world, so fraud patterns always find one.
    drawn[: len(categories)] = np.arange(len(categories))
    return drawn


def _build_merchants(rng: np.random.Generator, per_country: int) -> Merchants:
    n_countries = len(catalog.COUNTRIES)
    groups = (
        ("m", catalog.LEGIT_CATEGORIES, per_country),
        ("n", catalog.NEW_CATEGORIES, max(per_country // 5, 1)),
        ("r", catalog.RISKY_CATEGORIES, max(per_country // 10, 1)),
    )
    ids: list[str] = []
    mccs: list[str] = []
    factors: list[float] = []
    country: list[np.ndarray] = []
    bases = []
    for tag, categories, size in groups:
        bases.append(MerchantGroup(len(ids), size))
        drawn = _draw_categories(rng, categories, size * n_countries)
        for row, cat_index in enumerate(drawn.tolist()):
            code = catalog.COUNTRIES[row // size].code
            ids.append(f"{tag}-{code}-{row % size:05d}")
            mccs.append(categories[cat_index].mcc)
            factors.append(categories[cat_index].amount_factor)
        country.append(np.repeat(np.arange(n_countries), size))
    return Merchants(
        ids=ids,
        mcc=mccs,
        amount_factor=np.array(factors),
        country=np.concatenate(country),
        online=np.array([m in catalog.ONLINE_MCCS for m in mccs]),
        atm=np.array([m == catalog.ATM_MCC for m in mccs]),
        everyday=bases[0],
        new=bases[1],
        risky=bases[2],
        rows_by_mcc={m: np.flatnonzero(np.array(mccs) == m) for m in set(mccs)},
    )


def _build_cards(rng: np.random.Generator, n: int, merchants: Merchants, prefix: str) -> Cards:
    homes = np.array(catalog.HOME_COUNTRIES)
    weights = np.array([catalog.COUNTRIES[i].home_weight for i in homes])
    home = rng.choice(homes, size=n, p=weights / weights.sum())
    # Travel mostly to another home-market country; a shift changes `travel` only in drift scenarios.
    travel = rng.choice(homes, size=n)
    travel = np.where(travel == home, homes[(np.searchsorted(homes, travel) + 1) % len(homes)], travel)
    daily_rate = rng.lognormal(np.log(DAILY_MEDIAN), DAILY_SIGMA, size=n)
    channel = rng.dirichlet([4.0, 3.0, 2.5], size=n)
    favourites = merchants.everyday.pick(np.repeat(home, FAVOURITES), rng.random(n * FAVOURITES))
    return Cards(
        ids=[f"{prefix}{i:07d}" for i in range(n)],
        home=home,
        travel=travel,
        mu=rng.normal(np.log(25.0), 0.5, size=n),
        sigma=rng.uniform(0.45, 0.95, size=n),
        daily_rate=daily_rate,
        activity_cdf=np.cumsum(daily_rate) / daily_rate.sum(),
        channel_cdf=np.cumsum(channel, axis=1),
        favourites=favourites.reshape(n, FAVOURITES),
    )
