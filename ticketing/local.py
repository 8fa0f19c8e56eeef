"""Test mode: Stripe-shaped events for what the buyer or host did on our local stand-in pages.

They go through `services.stripe_event_handle`, exactly as verified webhooks do, so `make run`
exercises the same code as production.
"""

from __future__ import annotations

import secrets

from django.utils import timezone

from .models import Hold, PayoutAccount


def _event(event_type: str, obj: dict) -> dict:
    return {
        "id": f"evt_local_{secrets.token_hex(12)}",
        "object": "event",
        "type": event_type,
        "created": int(timezone.now().timestamp()),
        "livemode": False,
        "data": {"object": obj},
    }


def checkout_event(*, hold: Hold, kind: str) -> dict:
    """`checkout.session.completed` (kind="completed") or `checkout.session.expired` for a hold."""
    completed = kind == "completed"
    return _event(
        f"checkout.session.{kind}",
        {
            "id": hold.checkout_session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete" if completed else "expired",
            "payment_status": "paid" if completed else "unpaid",
            "amount_total": hold.price_cents,
            "currency": hold.currency,
            "payment_intent": f"pi_local_{hold.pk}" if completed else None,
            "client_reference_id": str(hold.pk),
            "metadata": {"hold_id": str(hold.pk), "space_id": str(hold.space_id)},
        },
    )


def account_event(*, account: PayoutAccount, ready: bool) -> dict:
    return _event(
        "account.updated",
        {
            "id": account.stripe_account_id,
            "object": "account",
            "type": "express",
            "charges_enabled": ready,
            "payouts_enabled": ready,
            "details_submitted": ready,
        },
    )
