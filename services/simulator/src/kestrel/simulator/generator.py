"""The traffic generator: pure, seeded, batch at a time; the caller decides what time it is."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

import numpy as np

from kestrel.simulator import catalog
from kestrel.simulator.fraud import PATTERNS, Draft, FraudInjector
from kestrel.simulator.invalid import corrupt
from kestrel.simulator.labels import DueLabels, LabelQueue
from kestrel.simulator.population import FAVOURITES, build_population
from kestrel.simulator.scenarios import DriftSchedule, Regime

Record = dict[str, Any]
PATTERN_ATTRIBUTE = "sim_pattern"
LABEL_SOURCE = "simulator"

_CODES = [c.code for c in catalog.COUNTRIES]
_CURRENCIES = [c.currency for c in catalog.COUNTRIES]
_FX = np.array([c.fx for c in catalog.COUNTRIES])
_SCALE = np.array([10.0**c.decimals for c in catalog.COUNTRIES])
_RARE = np.array(catalog.RARE_COUNTRIES)


@dataclass(frozen=True)
class GeneratorConfig:
    cards: int = 10_000
    seed: int = 0
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    """Part of every event_id, so reruns with the same seed are new events, not duplicates.
    Random by default: pass one to make a run reproducible down to its event ids."""
    fraud_rate: float = 0.01
    """Share of all events that are fraudulent (before a fraud-surge scenario multiplies it)."""
    fraud_patterns: tuple[str, ...] = tuple(PATTERNS)
    leak_pattern: bool = False
    """Put the fraud pattern in attributes: handy for debugging, fatal for a model (it leaks the label)."""
    invalid_rate: float = 0.0
    labels: bool = True
    """Produce labels at all; off saves their bookkeeping when nobody will send them."""
    label_share: float = 1.0
    """Share of legitimate events that get a label; fraudulent ones always do (chargebacks arrive)."""
    label_delay_s: tuple[float, float] = (1.0, 30.0)
    scenario: str = "none"
    drift_at_s: float = 0.0
    """Seconds of event time after the start when the scenario begins."""
    drift_ramp_s: float = 0.0
    merchants_per_country: int = 400
    card_prefix: str = "card-"

    def __post_init__(self) -> None:
        lo, hi = self.label_delay_s
        checks = {
            "cards must be >= 1": self.cards >= 1,
            "fraud_rate must be in [0, 0.5]": 0 <= self.fraud_rate <= 0.5,
            "invalid_rate must be in [0, 1]": 0 <= self.invalid_rate <= 1,
            "label_share must be in [0, 1]": 0 <= self.label_share <= 1,
            "label delays must satisfy 0 <= min <= max": 0 <= lo <= hi,
            "run_id must be 1-64 characters without spaces": 0 < len(self.run_id) <= 64 and " " not in self.run_id,
        }
        failed = [reason for reason, ok in checks.items() if not ok]
        if failed:
            raise ValueError("; ".join(failed))


@dataclass
class Batch:
    events: list[Record]
    labels: list[Record]
    fraud: int = 0
    invalid: int = 0
    fraud_labels: int = 0
    patterns: dict[str, int] = field(default_factory=dict)


@dataclass
class _Legit:
    card: np.ndarray
    time: np.ndarray
    country: np.ndarray
    merchant: np.ndarray
    channel: np.ndarray
    amount: np.ndarray


class Generator:
    """Each step(n, t_end) returns n events with event times in [previous t_end, t_end), plus due labels.

    The same seed, run id, start time and sequence of steps always give the same output.
    """

    def __init__(self, config: GeneratorConfig, start_ms: int) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.seed)
        self.population = build_population(self._rng, config.cards, config.merchants_per_country, config.card_prefix)
        self._fraud = FraudInjector(self._rng, self.population, config.fraud_patterns)
        self._labels = LabelQueue()
        self._drift = DriftSchedule.named(
            config.scenario, start_ms + int(config.drift_at_s * 1000), int(config.drift_ramp_s * 1000)
        )
        self._t = start_ms
        self._seq = 0
        self._prefix = f"{config.run_id}-"

    @property
    def pending_labels(self) -> int:
        return len(self._labels)

    def event_id(self, seq: int) -> str:
        return f"{self._prefix}{seq}"

    def rebase(self, start_ms: int) -> None:
        """Move the start (and the drift point with it) to `start_ms`; only before the first step.

        Building a large population takes seconds of wall-clock time; a live run rebases to the
        moment it really starts so the first batch does not cover that gap.
        """
        if self._seq:
            raise RuntimeError("rebase() is only allowed before the first step()")
        delta = start_ms - self._t
        self._drift = replace(self._drift, start_ms=self._drift.start_ms + delta)
        self._t = start_ms

    def regime(self, t_ms: int) -> Regime:
        return self._drift.at(t_ms)

    def drift_progress(self) -> float:
        """How far the scenario has gone at the current time: 0 before it starts, 1 when fully in force."""
        return 0.0 if self.config.scenario == "none" else self._drift.progress(self._t)

    def step(self, n: int, t_end_ms: int) -> Batch:
        t0, t1 = self._t, max(t_end_ms, self._t)
        regime = self._drift.at(t1)
        drafts = self._fraud.take(n, self.config.fraud_rate * regime.fraud_factor, t0, t1)
        legit = self._legit(n - len(drafts), t0, t1, regime)
        events = self._legit_records(legit) + self._fraud_records(drafts, self._seq + len(legit.card))
        invalid = corrupt(self._rng, events[: len(legit.card)], self.config.invalid_rate)
        if drafts:
            events.sort(key=itemgetter("event_time"))
        self._schedule_labels(legit, invalid, drafts)
        self._seq += n
        self._t = t1
        batch = Batch(events, self._label_records(self._labels.pop_due(t1)), len(drafts), len(invalid))
        batch.fraud_labels = sum(label["label"] for label in batch.labels)
        for draft in drafts:
            batch.patterns[draft.pattern] = batch.patterns.get(draft.pattern, 0) + 1
        return batch

    def drain_labels(self) -> list[Record]:
        """Every label still waiting (end of run), whatever its label_time."""
        return self._label_records(self._labels.pop_all())

    def _legit(self, n: int, t0: int, t1: int, regime: Regime) -> _Legit:
        rng, cards, merchants = self._rng, self.population.cards, self.population.merchants
        card = np.minimum(np.searchsorted(cards.activity_cdf, rng.random(n), side="right"), len(cards) - 1)
        time = t0 + (np.sort(rng.random(n)) * (t1 - t0)).astype(np.int64)
        country = self._countries(card, regime)
        merchant = self._merchants(card, country, regime)
        u = rng.random(n)
        cdf = cards.channel_cdf[card]
        channel = (u > cdf[:, 0]).astype(np.int64) + (u > cdf[:, 1])
        channel[rng.random(n) < regime.ecommerce_share] = catalog.ECOMMERCE
        channel[merchants.online[merchant]] = catalog.ECOMMERCE
        atm = merchants.atm[merchant]
        channel[atm] = catalog.ATM
        eur = np.exp(cards.mu[card] + cards.sigma[card] * rng.standard_normal(n))
        eur = np.maximum(eur * merchants.amount_factor[merchant] * regime.amount_factor, 0.3)
        # Cash machines pay out notes: round withdrawals to 20s, as people ask for them.
        eur[atm] = np.maximum(np.round(eur[atm] / 20.0), 1.0) * 20.0
        amount = np.round(eur * _FX[country] * _SCALE[country]) / _SCALE[country]
        return _Legit(card, time, country, merchant, channel, amount)

    def _countries(self, card: np.ndarray, regime: Regime) -> np.ndarray:
        cards, rng = self.population.cards, self._rng
        u = rng.random(len(card))
        country = cards.home[card].copy()
        rare = u < regime.rare_country_share
        travel = ~rare & (u < regime.rare_country_share + regime.travel_share)
        country[travel] = cards.travel[card[travel]]
        country[rare] = _RARE[rng.integers(len(_RARE), size=int(rare.sum()))]
        return country

    def _merchants(self, card: np.ndarray, country: np.ndarray, regime: Regime) -> np.ndarray:
        cards, merchants, rng = self.population.cards, self.population.merchants, self._rng
        u, u_pick = rng.random(len(card)), rng.random(len(card))
        merchant = merchants.everyday.pick(country, u_pick)
        # Favourites are shops at home: abroad everyone is a stranger.
        favourite = (u < regime.favourite_share) & (country == cards.home[card])
        merchant[favourite] = cards.favourites[card[favourite], (u_pick[favourite] * FAVOURITES).astype(np.int64)]
        new = (u >= regime.favourite_share) & (u < regime.favourite_share + regime.new_merchant_share)
        merchant[new] = merchants.new.pick(country[new], u_pick[new])
        return merchant

    def _legit_records(self, legit: _Legit) -> list[Record]:
        ids, merchants = self.population.cards.ids, self.population.merchants
        m_ids, mccs, prefix, channels = merchants.ids, merchants.mcc, self._prefix, catalog.CHANNELS
        leak = self.config.leak_pattern
        columns = (
            legit.card.tolist(),
            legit.time.tolist(),
            legit.amount.tolist(),
            legit.country.tolist(),
            legit.merchant.tolist(),
            legit.channel.tolist(),
        )
        return [
            {
                "event_id": f"{prefix}{seq}",
                "entity_id": ids[c],
                "event_time": t,
                "amount": a,
                "currency": _CURRENCIES[k],
                "merchant_id": m_ids[m],
                "merchant_category": mccs[m],
                "country": _CODES[k],
                "channel": channels[ch],
                "attributes": {PATTERN_ATTRIBUTE: "legit"} if leak else {},
            }
            for seq, (c, t, a, k, m, ch) in enumerate(zip(*columns), start=self._seq)
        ]

    def _fraud_records(self, drafts: list[Draft], first: int) -> list[Record]:
        ids, merchants = self.population.cards.ids, self.population.merchants
        return [
            {
                "event_id": f"{self._prefix}{seq}",
                "entity_id": ids[d.card],
                "event_time": d.time_ms,
                "amount": d.amount,
                "currency": _CURRENCIES[d.country],
                "merchant_id": merchants.ids[d.merchant],
                "merchant_category": merchants.mcc[d.merchant],
                "country": _CODES[d.country],
                "channel": catalog.CHANNELS[d.channel],
                "attributes": {PATTERN_ATTRIBUTE: d.pattern} if self.config.leak_pattern else {},
            }
            for seq, d in enumerate(drafts, start=first)
        ]

    def _schedule_labels(self, legit: _Legit, invalid: list[int], drafts: list[Draft]) -> None:
        if not self.config.labels:
            return
        rng, n_legit, share = self._rng, len(legit.card), self.config.label_share
        keep = np.ones(n_legit, dtype=bool) if share >= 1 else rng.random(n_legit) < share
        keep[invalid] = False  # ingest rejects these, so no label can ever refer to them
        fraud_seq = self._seq + n_legit + np.arange(len(drafts), dtype=np.int64)
        seq = np.concatenate([self._seq + np.flatnonzero(keep), fraud_seq])
        card = np.concatenate([legit.card[keep], np.array([d.card for d in drafts], dtype=np.int64)])
        label = np.concatenate([np.zeros(int(keep.sum()), dtype=np.int64), np.ones(len(drafts), dtype=np.int64)])
        time = np.concatenate([legit.time[keep], np.array([d.time_ms for d in drafts], dtype=np.int64)])
        lo, hi = self.config.label_delay_s
        delay = (rng.uniform(lo, hi, size=len(seq)) * 1000).astype(np.int64)
        self._labels.push(seq, card, label, time + delay)

    def _label_records(self, due: DueLabels) -> list[Record]:
        ids, prefix = self.population.cards.ids, self._prefix
        return [
            {"event_id": f"{prefix}{seq}", "entity_id": ids[c], "label": label, "label_time": t, "source": LABEL_SOURCE}
            for seq, c, label, t in zip(
                due.seq.tolist(), due.card.tolist(), due.label.tolist(), due.label_time.tolist()
            )
        ]
