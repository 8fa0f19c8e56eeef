from decimal import Decimal

from django import forms

from . import rules
from .commission import format_cents


class TicketSettingsForm(forms.Form):
    price = forms.DecimalField(
        label="Price (USD)",
        max_digits=7,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    capacity = forms.IntegerField(
        label="Number of tickets",
        min_value=1,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    sales_close_at = forms.DateTimeField(
        label="Sales close",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty to sell until the Space ends. Times are in your time zone.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        low, high = rules.MIN_PRICE_CENTS, rules.MAX_PRICE_CENTS
        self.fields["price"].help_text = f"Between {format_cents(low)} and {format_cents(high)}."
        self.fields["price"].widget.attrs.update(min=f"{low / 100:.2f}", max=f"{high / 100:.2f}")
        self.fields["capacity"].widget.attrs["max"] = rules.MAX_CAPACITY

    @property
    def price_cents(self) -> int:
        # DecimalField has already refused more than two decimal places, so this is exact.
        return int(self.cleaned_data["price"] * Decimal(100))
