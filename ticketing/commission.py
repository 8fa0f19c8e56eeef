"""The platform's commission on a ticket, in integer cents.

The rate depends on the host's lifetime ticket earnings *before* the sale: the low rate until they
reach the threshold, the high rate from then on. A sale that crosses the threshold is still priced
at the low rate, because the rate in force when it was sold is the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

BPS_DENOMINATOR = 10_000


@dataclass(frozen=True)
class Split:
    price_cents: int
    rate_bps: int
    commission_cents: int
    host_share_cents: int


def rate_bps_for(*, lifetime_cents: int) -> int:
    if lifetime_cents >= settings.SPACES_TICKET_THRESHOLD_CENTS:
        return settings.SPACES_TICKET_HIGH_COMMISSION_BPS
    return settings.SPACES_TICKET_COMMISSION_BPS


def commission_for(*, price_cents: int, rate_bps: int) -> int:
    """price × rate, rounded half-up to a whole cent (exact integer arithmetic, no floats)."""
    if price_cents < 0 or rate_bps < 0:
        raise ValueError("price and rate must not be negative")
    return (price_cents * rate_bps + BPS_DENOMINATOR // 2) // BPS_DENOMINATOR


def split(*, price_cents: int, lifetime_cents: int) -> Split:
    rate = rate_bps_for(lifetime_cents=lifetime_cents)
    commission = commission_for(price_cents=price_cents, rate_bps=rate)
    return Split(
        price_cents=price_cents,
        rate_bps=rate,
        commission_cents=commission,
        host_share_cents=price_cents - commission,
    )


def format_cents(cents: int, currency: str = "usd") -> str:
    sign = "−" if cents < 0 else ""
    cents = abs(cents)
    symbol = "$" if currency.lower() == "usd" else ""
    suffix = "" if symbol else f" {currency.upper()}"
    return f"{sign}{symbol}{cents // 100:,}.{cents % 100:02d}{suffix}"
