"""Named drift scenarios: how traffic behaves before and after a drift point, with an optional ramp."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Regime:
    """The knobs of legitimate behaviour (and the fraud prior) at one moment of the run."""

    amount_factor: float = 1.0
    """Multiplies every legitimate amount (inflation, a price change, a new customer segment)."""
    favourite_share: float = 0.8
    """Share of payments at one of the card's usual merchants."""
    new_merchant_share: float = 0.0
    """Share of payments at merchants of categories never seen before."""
    travel_share: float = 0.02
    """Share of payments abroad, in the card's usual travel country."""
    rare_country_share: float = 0.0
    """Share of legitimate payments in countries almost nobody used before."""
    ecommerce_share: float = 0.0
    """Extra share of payments moved online, whatever the card's usual channel."""
    fraud_factor: float = 1.0
    """Multiplies the configured fraud rate (a fraud wave is prior drift)."""

    def blend(self, target: Regime, weight: float) -> Regime:
        """Linear interpolation: weight 0 is self, 1 is target."""
        if weight <= 0.0:
            return self
        if weight >= 1.0:
            return target
        return Regime(
            **{f.name: (1 - weight) * getattr(self, f.name) + weight * getattr(target, f.name) for f in fields(Regime)}
        )


BASELINE = Regime()

SCENARIOS: dict[str, tuple[str, Regime]] = {
    "none": ("no drift", BASELINE),
    "amount-shift": ("legitimate amounts grow 1.8x", replace(BASELINE, amount_factor=1.8)),
    "merchant-mix": (
        "a third of spend moves to new kinds of merchants (digital goods, SaaS)",
        replace(BASELINE, favourite_share=0.45, new_merchant_share=0.35),
    ),
    "new-country-wave": (
        "a fifth of legitimate payments come from rarely seen countries",
        replace(BASELINE, rare_country_share=0.2),
    ),
    "channel-shift": ("40% of in-store spending moves online", replace(BASELINE, ecommerce_share=0.4)),
    "fraud-surge": ("fraud rate rises 4x (prior drift)", replace(BASELINE, fraud_factor=4.0)),
}


class UnknownScenarioError(ValueError):
    """The scenario name is not one of SCENARIOS."""


@dataclass(frozen=True)
class DriftSchedule:
    """Baseline until `start_ms`, then a linear ramp over `ramp_ms` to the scenario's regime."""

    target: Regime
    start_ms: int
    ramp_ms: int = 0

    @classmethod
    def named(cls, name: str, start_ms: int, ramp_ms: int = 0) -> DriftSchedule:
        if name not in SCENARIOS:
            raise UnknownScenarioError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        return cls(SCENARIOS[name][1], start_ms, max(ramp_ms, 0))

    def progress(self, t_ms: int) -> float:
        """0 before the drift point, 1 once the ramp is complete."""
        if t_ms < self.start_ms:
            return 0.0
        return 1.0 if self.ramp_ms == 0 else min((t_ms - self.start_ms) / self.ramp_ms, 1.0)

    def at(self, t_ms: int) -> Regime:
        return BASELINE.blend(self.target, self.progress(t_ms))
