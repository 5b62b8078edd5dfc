"""Fraud patterns: episodes of fraudulent payments on a card, scheduled over the minutes after they start."""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kestrel.simulator import catalog
from kestrel.simulator.population import Population

_RISKY_MCCS = tuple(c.mcc for c in catalog.RISKY_CATEGORIES)


class Draft(NamedTuple):
    """One fraudulent payment waiting for its time; amount already in the local currency."""

    time_ms: int
    card: int
    merchant: int
    country: int
    amount: float
    channel: int
    pattern: str


class _Episode:
    """Builds one episode's drafts: times advance by random gaps from the start.

    Scalar `random()` arithmetic throughout: numpy calls on single values cost microseconds each.
    """

    def __init__(
        self, rng: np.random.Generator, population: Population, card: int, start_ms: int, pattern: str
    ) -> None:
        self.random = rng.random
        self.pop, self.card, self.t, self.pattern = population, card, start_ms, pattern
        self.typical = math.exp(float(population.cards.mu[card]))
        self.drafts: list[Draft] = []

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def count(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        return lo + int(self.random() * (hi - lo + 1))

    def add(self, merchant: int, amount_eur: float, channel: int, gap_s: tuple[float, float]) -> None:
        merchants = self.pop.merchants
        country = int(merchants.country[merchant])
        if merchants.atm[merchant]:
            channel = catalog.ATM
        spec = catalog.COUNTRIES[country]
        amount = round(max(amount_eur, 0.5) * spec.fx, spec.decimals)
        self.drafts.append(Draft(self.t, self.card, merchant, country, amount, channel, self.pattern))
        self.t += int(self.uniform(*gap_s) * 1000)

    def pick_mcc(self, mccs: Sequence[str]) -> int:
        return self.pop.merchants.any_with_mcc(mccs[int(self.random() * len(mccs))], self.random())


def _burst(ep: _Episode) -> None:
    """Card testing: a few cheap online probes seconds apart, then large resellable purchases."""
    probe = ep.pick_mcc(catalog.CARD_TESTING_MCCS)
    for _ in range(ep.count(3, 8)):
        ep.add(probe, ep.uniform(0.5, 4.0), catalog.ECOMMERCE, (2, 20))
    for _ in range(ep.count(1, 3)):
        ep.add(ep.pick_mcc(catalog.CASH_OUT_MCCS), ep.typical * ep.uniform(8, 25), catalog.ECOMMERCE, (10, 60))


def _new_country(ep: _Episode) -> None:
    """A cloned card used in person in a country the holder never visits."""
    country = catalog.RARE_COUNTRIES[int(ep.random() * len(catalog.RARE_COUNTRIES))]
    for _ in range(ep.count(2, 6)):
        merchant = ep.pop.merchants.everyday.pick_one(country, ep.random())
        channel = catalog.POS if ep.random() < 0.6 else catalog.CONTACTLESS
        ep.add(merchant, ep.typical * ep.uniform(2, 8), channel, (15, 120))


def _unusual_amount(ep: _Episode) -> None:
    """One purchase far above anything the card usually spends, at an ordinary merchant at home."""
    merchant = ep.pop.merchants.everyday.pick_one(int(ep.pop.cards.home[ep.card]), ep.random())
    ep.add(merchant, ep.typical * ep.uniform(10, 40), catalog.ECOMMERCE, (0, 0))


def _unusual_merchant(ep: _Episode) -> None:
    """Payments at categories the card never uses and fraud loves: gambling, money transfer, crypto."""
    factors = ep.pop.merchants.amount_factor
    for _ in range(ep.count(1, 4)):
        merchant = ep.pick_mcc(_RISKY_MCCS)
        ep.add(merchant, ep.typical * float(factors[merchant]) * ep.uniform(1, 3), catalog.ECOMMERCE, (20, 240))


@dataclass(frozen=True)
class Pattern:
    name: str
    weight: float
    build: Callable[[_Episode], None]


PATTERNS: dict[str, Pattern] = {
    p.name: p
    for p in (
        Pattern("burst", 0.35, _burst),
        Pattern("new-country", 0.25, _new_country),
        Pattern("unusual-amount", 0.20, _unusual_amount),
        Pattern("unusual-merchant", 0.20, _unusual_merchant),
    )
}


class FraudInjector:
    """Decides which events of a batch are fraud and what they look like.

    Each batch gets Binomial(n, rate) fraud slots, filled first with drafts of running episodes
    that are due, then with new episodes. Fraud is therefore `rate` of the traffic from the first
    batch on, whatever the clock or the achieved send rate; an episode's later drafts wait in a
    heap until their time (or, when slots are short, a little longer).
    """

    def __init__(self, rng: np.random.Generator, population: Population, patterns: Sequence[str]) -> None:
        unknown = sorted(set(patterns) - set(PATTERNS))
        if unknown or not patterns:
            raise ValueError(f"unknown fraud patterns {unknown}; choose from {', '.join(PATTERNS)}")
        self._rng, self._pop = rng, population
        self._patterns = [PATTERNS[name] for name in patterns]
        weights = np.array([p.weight for p in self._patterns])
        self._cdf = (np.cumsum(weights) / weights.sum()).tolist()
        self._queue: list[Draft] = []

    def __len__(self) -> int:
        return len(self._queue)

    def take(self, n_events: int, rate: float, t0_ms: int, t1_ms: int) -> list[Draft]:
        """The fraudulent events among the next `n_events` in [t0, t1), oldest first."""
        slots = int(self._rng.binomial(n_events, min(rate, 1.0))) if rate > 0 and n_events > 0 else 0
        t1_ms = max(t1_ms, t0_ms + 1)  # an empty interval still has room for its episodes' first events
        out: list[Draft] = []
        queue = self._queue
        while len(out) < slots:
            if queue and queue[0].time_ms < t1_ms:
                draft = heapq.heappop(queue)
                # A draft that waited for a slot happens now: keep event times inside the batch.
                out.append(draft if draft.time_ms >= t0_ms else draft._replace(time_ms=t0_ms))
            else:
                self._start_episode(t0_ms, t1_ms)
        return out

    def _start_episode(self, t0_ms: int, t1_ms: int) -> None:
        random = self._rng.random
        pattern = self._patterns[bisect.bisect_right(self._cdf, random() * self._cdf[-1])]
        start = t0_ms + int(random() * (t1_ms - t0_ms))
        episode = _Episode(self._rng, self._pop, int(random() * len(self._pop.cards)), start, pattern.name)
        pattern.build(episode)
        for draft in episode.drafts:
            heapq.heappush(self._queue, draft)
