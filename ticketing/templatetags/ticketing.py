from django import template

from ticketing.commission import format_cents

register = template.Library()


@register.filter
def cents(value: int, currency: str = "usd") -> str:
    """1234 → "$12.34"."""
    return format_cents(int(value or 0), currency)
