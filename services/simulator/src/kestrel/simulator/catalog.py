"""Reference data the simulated world is drawn from: countries, currencies, merchant categories, channels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    """ISO 3166-1 alpha-2."""
    currency: str
    """ISO 4217 code of the local currency: card payments are made in the merchant's currency."""
    fx: float
    """Local currency units per euro, so one spending profile yields plausible amounts everywhere."""
    home_weight: float
    """Share of cards issued here; 0 for countries that only appear through travel, drift or fraud."""
    decimals: int = 2


COUNTRIES: tuple[Country, ...] = (
    Country("DE", "EUR", 1.0, 0.18),
    Country("FR", "EUR", 1.0, 0.14),
    Country("ES", "EUR", 1.0, 0.08),
    Country("IT", "EUR", 1.0, 0.08),
    Country("NL", "EUR", 1.0, 0.06),
    Country("GB", "GBP", 0.85, 0.14),
    Country("US", "USD", 1.08, 0.20),
    Country("PL", "PLN", 4.3, 0.05),
    Country("SE", "SEK", 11.5, 0.04),
    Country("CH", "CHF", 0.95, 0.03),
    # Rarely or never seen at home: where legitimate travel is unusual and fraud likes to appear.
    Country("BR", "BRL", 5.9, 0.0),
    Country("IN", "INR", 90.0, 0.0),
    Country("JP", "JPY", 160.0, 0.0, decimals=0),
    Country("MX", "MXN", 19.0, 0.0),
    Country("TH", "THB", 38.0, 0.0),
    Country("ZA", "ZAR", 20.0, 0.0),
    Country("TR", "TRY", 35.0, 0.0),
    Country("AE", "AED", 4.0, 0.0),
    Country("SG", "SGD", 1.45, 0.0),
    Country("ID", "IDR", 17000.0, 0.0, decimals=0),
)

HOME_COUNTRIES = tuple(i for i, c in enumerate(COUNTRIES) if c.home_weight > 0)
RARE_COUNTRIES = tuple(i for i, c in enumerate(COUNTRIES) if c.home_weight == 0)


@dataclass(frozen=True, slots=True)
class Category:
    mcc: str
    """ISO 18245 merchant category code."""
    weight: float
    """Share of merchants (and so of everyday spending) in this category."""
    amount_factor: float
    """Typical ticket relative to the card's own typical amount (a coffee vs. a flight)."""


LEGIT_CATEGORIES: tuple[Category, ...] = (
    Category("5411", 0.22, 1.0),  # grocery stores, supermarkets
    Category("5812", 0.12, 0.9),  # restaurants
    Category("5814", 0.10, 0.35),  # fast food
    Category("5541", 0.08, 1.3),  # fuel
    Category("4111", 0.06, 0.2),  # commuter transport
    Category("5651", 0.06, 1.8),  # clothing
    Category("5912", 0.05, 0.7),  # pharmacies
    Category("5311", 0.05, 1.5),  # department stores
    Category("5999", 0.05, 0.9),  # miscellaneous retail
    Category("4121", 0.04, 0.6),  # taxis and ride hailing
    Category("5815", 0.04, 0.3),  # digital media
    Category("6011", 0.04, 2.0),  # ATM cash withdrawal
    Category("5732", 0.03, 4.0),  # electronics
    Category("5942", 0.03, 0.6),  # book stores
    Category("7011", 0.02, 5.0),  # hotels
    Category("4511", 0.01, 8.0),  # airlines
)

RISKY_CATEGORIES: tuple[Category, ...] = (
    Category("7995", 0.30, 2.5),  # betting and gambling
    Category("5967", 0.20, 1.5),  # direct marketing, inbound teleservices
    Category("4829", 0.20, 4.0),  # money transfer
    Category("6051", 0.15, 4.0),  # quasi-cash, crypto purchase
    Category("5944", 0.15, 6.0),  # jewellery
)

# Categories unseen before a merchant-mix drift: new kinds of business, not new fraud.
NEW_CATEGORIES: tuple[Category, ...] = (
    Category("5816", 0.30, 0.4),  # digital games
    Category("7372", 0.25, 1.2),  # software and SaaS subscriptions
    Category("5818", 0.20, 0.8),  # large digital goods merchants
    Category("4816", 0.15, 0.5),  # network and information services
    Category("5734", 0.10, 1.5),  # computer software stores
)

# Card-testing fraud probes cheap digital goods, then cashes out on resellable goods.
CARD_TESTING_MCCS = ("5815", "5816", "5999")
CASH_OUT_MCCS = ("5732", "5944", "6051")

CHANNELS = ("pos", "contactless", "ecommerce", "atm")
POS, CONTACTLESS, ECOMMERCE, ATM = range(4)
ATM_MCC = "6011"
ONLINE_MCCS = frozenset({"5815", "5816", "5818", "7372", "4816", "5967"})
"""Categories that only exist online: their payments are always ecommerce."""
