"""System checks `manage.py check --deploy` runs: how this server takes payments."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def payments_configured(app_configs, **kwargs) -> list[Warning]:
    if settings.STRIPE_SECRET_KEY:
        return []
    if settings.STRIPE_TEST_MODE:
        return [
            Warning(
                "STRIPE_TEST_MODE is on without a Stripe key: anyone can 'pay' for a ticket with the "
                "simulated checkout and no money moves.",
                hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or unset STRIPE_TEST_MODE.",
                id="ticketing.W002",
            )
        ]
    return [
        Warning(
            "No Stripe key is configured, so ticket sales are off on this server.",
            hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to sell tickets.",
            id="ticketing.W001",
        )
    ]
