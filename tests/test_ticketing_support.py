"""Shared helpers for the ticketing tests (this module holds no tests of its own).

Sellers are built from the real rules (followers, birthday, Spaces hosted, payout account), so a
helper that sets up "an eligible host" fails the moment the rules stop agreeing with it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from datetime import date, timedelta

import pytest
from django.utils import timezone

from rooms.models import Space
from tests.factories import UserFactory
from ticketing import services
from ticketing.models import Hold, PayoutAccount

WEBHOOK_SECRET = "whsec_test_" + "0123456789abcdef" * 2
_event_ids = itertools.count(1)


def eligible_host(**fields):
    """A host who meets every condition for selling tickets."""
    today = timezone.now().date()
    host = UserFactory(
        follower_count=fields.pop("follower_count", 1000),
        date_of_birth=fields.pop("date_of_birth", date(today.year - 30, 1, 1)),
        **fields,
    )
    now = timezone.now()
    for i in range(3):
        Space.objects.create(
            host=host, title=f"Warm-up {i}", state=Space.State.ENDED, started_at=now - timedelta(days=i + 1)
        )
    PayoutAccount.objects.create(
        user=host,
        stripe_account_id=f"acct_test_{host.pk}",
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
    )
    return host


def scheduled_space(host, *, in_hours: float = 24, title: str = "Ticketed talk") -> Space:
    return Space.objects.create(
        host=host,
        title=title,
        state=Space.State.SCHEDULED,
        scheduled_for=timezone.now() + timedelta(hours=in_hours),
    )


def ticketed_space(*, price_cents: int = 1000, capacity: int = 10, host=None, **kwargs) -> Space:
    host = host or eligible_host()
    space = scheduled_space(host, **kwargs)
    services.ticket_settings_save(
        space=space, by=host, price_cents=price_cents, capacity=capacity, sales_close_at=None
    )
    return space


def begin(space, buyer) -> Hold:
    return services.ticket_purchase_begin(
        space=space,
        buyer=buyer,
        success_url="http://testserver/done?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://testserver/cancelled",
    )


def checkout_event(hold: Hold, kind: str = "completed", *, event_id: str | None = None, **overrides) -> dict:
    """A Stripe event for a checkout session, shaped like Stripe's."""
    paid = kind == "completed"
    session = {
        "id": hold.checkout_session_id,
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete" if paid else "expired",
        "payment_status": "paid" if paid else "unpaid",
        "amount_total": hold.price_cents,
        "currency": hold.currency,
        "payment_intent": f"pi_test_{hold.pk}" if paid else None,
        "client_reference_id": str(hold.pk),
        "metadata": {"hold_id": str(hold.pk), "space_id": str(hold.space_id)},
        **overrides,
    }
    return {
        "id": event_id or f"evt_test_{next(_event_ids)}_{time.time_ns()}",
        "object": "event",
        "api_version": "2025-07-30.basil",
        "created": int(time.time()),
        "livemode": False,
        "type": f"checkout.session.{kind}",
        "data": {"object": session},
    }


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed the way Stripe documents it: HMAC-SHA256 of "t.payload"."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_event(client, event: dict, *, secret: str = WEBHOOK_SECRET, signature: str | None = None):
    payload = json.dumps(event)
    headers = {} if signature == "" else {"HTTP_STRIPE_SIGNATURE": signature or sign(payload, secret)}
    return client.post("/stripe/webhook/", data=payload, content_type="application/json", **headers)


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return WEBHOOK_SECRET
