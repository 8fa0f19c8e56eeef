"""The only module that talks to the payment provider.

Two gateways with one interface:

- `StripeGateway` (STRIPE_SECRET_KEY set): the real `stripe` library. STRIPE_API_BASE, when set,
  points it at another server (the tests' stand-in, tests/stripe_stub.py).
- `LocalGateway` (no key, and DEBUG or STRIPE_TEST_MODE on): ids are made up and "Stripe's pages" are our own
  clearly marked test pages (ticketing.views.local_*), which hand Stripe-shaped events to the same
  `services.stripe_event_handle` the webhook uses. No money moves.

Every call that creates something carries an idempotency key derived from our own row, so a retry
(ours, or the library's own network retries) can never charge, create or refund twice.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import stripe
from django.conf import settings
from django.urls import reverse

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """The payment provider could not do what we asked. The message is safe to show people."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class CheckoutRequest:
    hold_id: int
    space_id: int
    title: str
    price_cents: int
    currency: str
    application_fee_cents: int
    destination_account_id: str
    buyer_email: str
    success_url: str
    cancel_url: str
    expires_at: datetime


class Gateway(Protocol):
    local: bool

    def account_create(self, *, user_id: int, email: str) -> str: ...

    def account_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str: ...

    def checkout_create(self, request: CheckoutRequest) -> CheckoutSession: ...

    def checkout_expire(self, *, session_id: str) -> bool: ...

    def refund(self, *, ticket_id: int, payment_intent_id: str) -> str: ...


# Stripe refuses a Checkout Session that expires sooner than this after it is created.
STRIPE_MIN_SESSION_SECONDS = 30 * 60 + 60


# One HTTP client (and its connection pool) per timeout setting, shared by every gateway.
_http_clients: dict[int, stripe.HTTPClient] = {}


class StripeGateway:
    local = False

    def __init__(self, *, api_key: str, api_base: str = ""):
        self.api_key = api_key
        # The library reads its base address from the module at request time.
        stripe.api_base = api_base or stripe.DEFAULT_API_BASE
        stripe.enable_telemetry = False
        # The library waits 80 s for an answer by default; a request's thread should not.
        timeout = settings.STRIPE_TIMEOUT_SECONDS
        if timeout not in _http_clients:
            _http_clients[timeout] = stripe.new_default_http_client(timeout=timeout)
        stripe.default_http_client = _http_clients[timeout]

    def _call(self, what: str, fn, **kwargs):
        try:
            return fn(api_key=self.api_key, **kwargs)
        except stripe.StripeError as exc:
            log.warning("stripe %s failed: %r", what, exc)
            raise GatewayError(
                "The payment provider didn't answer properly. Nothing was charged; please try again."
            ) from exc

    def account_create(self, *, user_id: int, email: str) -> str:
        account = self._call(
            "account create",
            stripe.Account.create,
            type="express",
            email=email or None,
            capabilities={"card_payments": {"requested": True}, "transfers": {"requested": True}},
            metadata={"user_id": str(user_id)},
            idempotency_key=f"spaces-payout-account-{user_id}",
        )
        return account["id"]

    def account_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        link = self._call(
            "account link",
            stripe.AccountLink.create,
            account=account_id,
            refresh_url=refresh_url,
            return_url=return_url,
            type="account_onboarding",
        )
        return link["url"]

    def checkout_create(self, request: CheckoutRequest) -> CheckoutSession:
        # Our hold may be shorter than Stripe's minimum session; the sweep expires the session itself.
        expires_at = max(int(request.expires_at.timestamp()), _now_ts() + STRIPE_MIN_SESSION_SECONDS)
        metadata = {"hold_id": str(request.hold_id), "space_id": str(request.space_id)}
        session = self._call(
            "checkout create",
            stripe.checkout.Session.create,
            mode="payment",
            line_items=[
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": request.price_cents,
                        "product_data": {"name": f"Ticket: {request.title}"},
                    },
                }
            ],
            payment_intent_data={
                "application_fee_amount": request.application_fee_cents,
                "transfer_data": {"destination": request.destination_account_id},
                "metadata": metadata,
            },
            client_reference_id=str(request.hold_id),
            customer_email=request.buyer_email or None,
            metadata=metadata,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            expires_at=expires_at,
            idempotency_key=f"spaces-ticket-hold-{request.hold_id}",
        )
        return CheckoutSession(id=session["id"], url=session["url"])

    def checkout_expire(self, *, session_id: str) -> bool:
        """Close an open session. True if it can no longer be paid, False if it was paid already."""
        try:
            stripe.checkout.Session.expire(session_id, api_key=self.api_key)
            return True
        except stripe.InvalidRequestError:
            # Not open any more: find out whether it was paid or had expired on its own.
            session = self._call("checkout retrieve", stripe.checkout.Session.retrieve, id=session_id)
            return session["status"] != "complete"
        except stripe.StripeError as exc:
            raise GatewayError("The payment provider didn't answer; the hold stays until it does.") from exc

    def refund(self, *, ticket_id: int, payment_intent_id: str) -> str:
        try:
            refund = stripe.Refund.create(
                api_key=self.api_key,
                payment_intent=payment_intent_id,
                # The buyer gets everything back: the host's share comes back from their account
                # and the platform returns its commission.
                reverse_transfer=True,
                refund_application_fee=True,
                metadata={"ticket_id": str(ticket_id)},
                idempotency_key=f"spaces-ticket-refund-{ticket_id}",
            )
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "code", None) == "charge_already_refunded":
                # A retry after the idempotency key has been forgotten (24 h): the money is back already.
                return ""
            log.warning("stripe refund failed: %r", exc)
            raise GatewayError(str(exc.user_message or exc)) from exc
        except stripe.StripeError as exc:
            log.warning("stripe refund failed: %r", exc)
            raise GatewayError("The payment provider didn't answer; the refund will be retried.") from exc
        return refund["id"]


class LocalGateway:
    """Test mode: nothing leaves this server."""

    local = True

    def account_create(self, *, user_id: int, email: str) -> str:
        return f"acct_local_{user_id}_{secrets.token_hex(4)}"

    def account_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        return reverse("ticketing:local_onboarding", kwargs={"account_id": account_id})

    def checkout_create(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = f"cs_local_{request.hold_id}_{secrets.token_hex(8)}"
        return CheckoutSession(
            id=session_id, url=reverse("ticketing:local_checkout", kwargs={"session_id": session_id})
        )

    def checkout_expire(self, *, session_id: str) -> bool:
        return True

    def refund(self, *, ticket_id: int, payment_intent_id: str) -> str:
        return f"re_local_{ticket_id}"


def _now_ts() -> int:
    from django.utils import timezone

    return int(timezone.now().timestamp())


SALES_OFF_MESSAGE = (
    "Ticket sales are off on this server: no Stripe key is configured. "
    "The site's operator can set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to turn them on."
)


def get_gateway() -> Gateway:
    if settings.STRIPE_SECRET_KEY:
        return StripeGateway(api_key=settings.STRIPE_SECRET_KEY, api_base=settings.STRIPE_API_BASE)
    if settings.STRIPE_TEST_MODE:
        return LocalGateway()
    raise GatewayError(SALES_OFF_MESSAGE)


def is_test_mode() -> bool:
    """Payments are simulated by our own pages: no key, and test mode allowed (DEBUG or STRIPE_TEST_MODE)."""
    return not settings.STRIPE_SECRET_KEY and settings.STRIPE_TEST_MODE


def sales_enabled() -> bool:
    """Tickets can be sold: a real Stripe key, or the test mode."""
    return bool(settings.STRIPE_SECRET_KEY) or settings.STRIPE_TEST_MODE
