"""Every write about tickets: payout accounts, ticket settings, checkout, Stripe events, refunds.

Views, the webhook, the local test checkout, admin actions and Celery tasks all call these.

Seats. A Space's `TicketSettings` row is locked (select_for_update; on SQLite the IMMEDIATE
transaction already holds the write lock) by every service that can add a held or a sold seat, and
under that lock sold + open holds ≤ capacity is checked. A hold stays counted until the provider
confirms its checkout can no longer be paid (expired webhook, or our own expire call), so the
invariant holds whatever the timing of webhooks. A payment that completes for a hold that was
already released gets a ticket only if a seat is free, and is refunded in full otherwise.

Provider calls (Stripe) never run inside a transaction holding the seat lock: a hold is written
first, the checkout created after, so a slow provider does not serialise every buyer behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from accounts import hooks as account_hooks
from accounts.models import User
from notifications.services import notify
from rooms.models import Space

from . import rules, selectors
from .commission import format_cents, split
from .gateway import SALES_OFF_MESSAGE, CheckoutRequest, GatewayError, get_gateway, sales_enabled
from .models import Hold, LedgerEntry, PayoutAccount, Ticket, TicketSettings, WebhookEvent

log = logging.getLogger(__name__)


class TicketError(Exception):
    """Something a buyer or host tried can't happen now. The message says why, for people."""


class SoldOut(TicketError):
    pass


class AlreadyHasTicket(TicketError):
    pass


# --- payout accounts --------------------------------------------------------


def payout_account_onboarding_url(*, user: User, refresh_url: str, return_url: str) -> str:
    """Create the host's Express account if they have none, and return a fresh onboarding link."""
    if user.is_suspended:
        raise PermissionDenied("Your account is suspended, so you can't sell tickets.")
    gateway = get_gateway()  # GatewayError when ticket sales are off on this server
    account = PayoutAccount.objects.filter(user=user).first()
    if account is None:
        # The provider call is idempotent per user, so a double click makes one account.
        account_id = gateway.account_create(user_id=user.pk, email=user.email)
        try:
            with transaction.atomic():
                account = PayoutAccount.objects.create(user=user, stripe_account_id=account_id)
        except IntegrityError:
            account = PayoutAccount.objects.get(user=user)
    return gateway.account_link(
        account_id=account.stripe_account_id, refresh_url=refresh_url, return_url=return_url
    )


def payout_account_apply(*, account: Mapping[str, Any], event_created: int) -> str:
    """Apply an `account.updated` snapshot. An event older than the last one applied changes nothing."""
    updated = PayoutAccount.objects.filter(
        stripe_account_id=account["id"], status_event_created__lte=event_created
    ).update(
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
        status_event_created=event_created,
        updated_at=timezone.now(),
    )
    if updated:
        return "account_updated"
    if PayoutAccount.objects.filter(stripe_account_id=account["id"]).exists():
        return "account_stale_event"
    return "account_unknown"


# --- ticket settings ----------------------------------------------------------


def validate_price_cents(price_cents: int) -> None:
    low, high = rules.MIN_PRICE_CENTS, rules.MAX_PRICE_CENTS
    if not isinstance(price_cents, int) or isinstance(price_cents, bool):
        raise ValidationError("Enter the price in whole cents.")
    if not low <= price_cents <= high:
        raise ValidationError(
            f"Tickets cost between {format_cents(low)} and {format_cents(high)}.", code="price_range"
        )


def ticket_settings_save(
    *, space: Space, by: User, price_cents: int, capacity: int, sales_close_at: datetime | None
) -> TicketSettings:
    """Start selling tickets for a Space, or change its price, cap or closing time."""
    if by.pk != space.host_id:
        raise PermissionDenied("Only the host can sell tickets for this Space.")
    if not sales_enabled():
        raise PermissionDenied(SALES_OFF_MESSAGE)
    validate_price_cents(price_cents)
    if not 1 <= capacity <= rules.MAX_CAPACITY:
        raise ValidationError(f"Offer between 1 and {rules.MAX_CAPACITY:,} tickets.", code="capacity_range")
    now = timezone.now()
    with transaction.atomic():
        space = Space.objects.select_for_update(no_key=True).get(pk=space.pk)
        if space.state not in (Space.State.SCHEDULED, Space.State.LIVE):
            raise ValidationError("Tickets can only be sold for a scheduled or live Space.")
        ts = TicketSettings.objects.select_for_update().filter(space=space).first()
        if ts is None:
            eligibility = selectors.seller_eligibility(user=by)
            if not eligibility.allowed:
                raise PermissionDenied(
                    "You can't sell tickets yet: " + "; ".join(c.label for c in eligibility.lacking) + "."
                )
        elif by.is_suspended:
            raise PermissionDenied("Your account is suspended, so you can't sell tickets.")
        elif ts.refunds_requested_at is not None:
            raise ValidationError("This Space's tickets have been refunded; its ticket settings are closed.")
        if (
            sales_close_at is not None
            and sales_close_at <= now
            and (ts is None or ts.sales_close_at != sales_close_at)
        ):
            raise ValidationError("Choose a closing time in the future.", code="close_in_past")

        if ts is None:
            return TicketSettings.objects.create(
                space=space,
                price_cents=price_cents,
                currency=rules.CURRENCY,
                capacity=capacity,
                sales_close_at=sales_close_at,
            )

        sold, held = selectors.seats_taken(space_id=space.pk)
        if price_cents != ts.price_cents and Ticket.objects.filter(space=space).exists():
            raise ValidationError(
                "The price can't change once tickets have been sold: every holder paid "
                f"{format_cents(ts.price_cents, ts.currency)}.",
                code="price_locked",
            )
        if capacity < sold:
            raise ValidationError(
                f"You've sold {sold} ticket{'s' if sold != 1 else ''}, so the cap can't be lower than that.",
                code="capacity_below_sold",
            )
        if capacity < sold + held:
            raise ValidationError(
                f"{held} {'person is' if held == 1 else 'people are'} paying for a ticket right now; "
                f"the cap can't go below {sold + held} until they finish (at most "
                f"{rules.HOLD_MINUTES} minutes).",
                code="capacity_below_held",
            )
        ts.price_cents, ts.capacity, ts.sales_close_at = price_cents, capacity, sales_close_at
        ts.save(update_fields=["price_cents", "capacity", "sales_close_at", "updated_at"])
        return ts


# --- purchase -----------------------------------------------------------------


def ticket_purchase_begin(*, space: Space, buyer: User, success_url: str, cancel_url: str) -> Hold:
    """Hold a seat for `buyer` and open a checkout for it. Returns the hold; send the buyer to
    `hold.checkout_url`. A buyer whose checkout is still open gets the same one back."""
    if not buyer.is_authenticated:
        raise PermissionDenied("Sign in to buy a ticket.")
    if buyer.is_suspended:
        raise PermissionDenied("Your account is suspended.")
    if buyer.pk == space.host_id:
        raise TicketError("You're the host of this Space, so you don't need a ticket.")
    if not sales_enabled():
        raise TicketError("Tickets can't be bought on this server right now: payments aren't set up.")

    # In a rush most people arrive after the last ticket went: tell them without queueing for the
    # lock. Issued tickets only ever go away by refund, so "sold out" read here stays true.
    known = TicketSettings.objects.filter(space=space, refunds_requested_at__isnull=True).first()
    if known is not None:
        sold = Ticket.objects.filter(space=space, status__in=selectors.SEAT_STATUSES).count()
        if sold >= known.capacity:
            if Ticket.objects.filter(space=space, holder=buyer, status=Ticket.Status.VALID).exists():
                raise AlreadyHasTicket("You already have a ticket for this Space.")
            raise SoldOut("Sold out.")

    # A lapsed checkout of this buyer's must be closed at the provider before its seat is let go.
    lapsed = Hold.objects.filter(
        space=space, buyer=buyer, status=Hold.Status.OPEN, expires_at__lte=timezone.now()
    ).first()
    if lapsed is not None:
        hold_expire(hold=lapsed)

    now = timezone.now()
    with transaction.atomic():
        ts = (
            # Only the settings row: the Space and host rows are locked by rooms in another order.
            TicketSettings.objects.select_for_update(of=("self",))
            .select_related("space__host")
            .filter(space=space)
            .first()
        )
        if ts is None:
            raise TicketError("This Space doesn't sell tickets.")
        closed = selectors.sales_closed_reason(ticket_settings=ts, now=now)
        if closed:
            raise TicketError(closed)
        if Ticket.objects.filter(space=space, holder=buyer, status=Ticket.Status.VALID).exists():
            raise AlreadyHasTicket("You already have a ticket for this Space.")
        mine = Hold.objects.filter(space=space, buyer=buyer, status=Hold.Status.OPEN).first()
        if mine is not None:
            if mine.checkout_url and mine.expires_at > now:
                return mine
            raise TicketError("Your checkout is still being set up. Give it a few seconds and try again.")
        sold, held = selectors.seats_taken(space_id=space.pk)
        if sold + held >= ts.capacity:
            raise SoldOut(
                "Sold out." if held == 0 else "Sold out for now: the last seats are in someone's checkout."
            )
        parts = split(
            price_cents=ts.price_cents, lifetime_cents=selectors.lifetime_earnings_cents(host=ts.space.host)
        )
        hold = Hold.objects.create(
            space=space,
            buyer=buyer,
            expires_at=now + timedelta(minutes=rules.HOLD_MINUTES),
            price_cents=parts.price_cents,
            currency=ts.currency,
            commission_bps=parts.rate_bps,
            commission_cents=parts.commission_cents,
            host_share_cents=parts.host_share_cents,
        )
        destination = PayoutAccount.objects.get(user_id=space.host_id).stripe_account_id

    try:
        session = get_gateway().checkout_create(
            CheckoutRequest(
                hold_id=hold.pk,
                space_id=space.pk,
                title=space.title,
                price_cents=hold.price_cents,
                currency=hold.currency,
                application_fee_cents=hold.commission_cents,
                destination_account_id=destination,
                buyer_email=buyer.email,
                success_url=success_url,
                cancel_url=cancel_url,
                expires_at=hold.expires_at,
            )
        )
    except GatewayError as exc:
        Hold.objects.filter(pk=hold.pk, status=Hold.Status.OPEN).update(
            status=Hold.Status.FAILED, closed_at=timezone.now()
        )
        raise TicketError(str(exc)) from exc
    Hold.objects.filter(pk=hold.pk).update(checkout_session_id=session.id, checkout_url=session.url)
    hold.checkout_session_id, hold.checkout_url = session.id, session.url
    return hold


def hold_expire(*, hold: Hold) -> bool:
    """Close a hold's checkout at the provider, then free its seat. False if it turned out to be paid
    (its `checkout.session.completed` will issue the ticket) or the provider could not be reached."""
    if hold.status != Hold.Status.OPEN:
        return False
    if hold.checkout_session_id:
        try:
            if not get_gateway().checkout_expire(session_id=hold.checkout_session_id):
                return False
        except GatewayError:
            log.warning("could not expire checkout %s; will retry", hold.checkout_session_id)
            return False
    return hold_release(hold_id=hold.pk) == "hold_released"


def hold_release(*, hold_id: int) -> str:
    """Free the seat of a checkout that can no longer be paid. Doing it twice changes nothing."""
    released = Hold.objects.filter(pk=hold_id, status=Hold.Status.OPEN).update(
        status=Hold.Status.EXPIRED, closed_at=timezone.now()
    )
    return "hold_released" if released else "hold_already_closed"


def ticket_issue(
    *, hold_id: int, payment_intent_id: str, amount_total: int | None, currency: str | None
) -> str:
    """A checkout was paid: turn its hold into a ticket (once), with its sale in the ledger.

    If the hold had been released meanwhile and no seat is free, or the buyer already holds a ticket,
    or the Space is over, the payment is refunded in full instead (after commit).
    """
    hold = Hold.objects.filter(pk=hold_id).select_related("space").first()
    if hold is None:
        log.error("payment for unknown hold %s (payment %s)", hold_id, payment_intent_id)
        return "unknown_hold"
    with transaction.atomic():
        ts = TicketSettings.objects.select_for_update().get(space_id=hold.space_id)
        hold = Hold.objects.select_for_update(of=("self",)).select_related("space").get(pk=hold_id)
        if hold.status == Hold.Status.COMPLETED or Ticket.objects.filter(hold=hold).exists():
            return "ticket_already_issued"
        problem = ""
        if Ticket.objects.filter(
            space_id=hold.space_id, holder_id=hold.buyer_id, status=Ticket.Status.VALID
        ).exists():
            problem = Ticket.RefundReason.DUPLICATE
        elif ts.refunds_requested_at is not None or hold.space.state in (
            Space.State.ENDED,
            Space.State.CANCELLED,
        ):
            problem = Ticket.RefundReason.UNAVAILABLE
        elif hold.status != Hold.Status.OPEN:
            # Its seat was let go; the buyer paid anyway (a race with expiry). A free seat is theirs.
            sold, held = selectors.seats_taken(space_id=hold.space_id, exclude_hold_id=hold.pk)
            if sold + held >= ts.capacity:
                problem = Ticket.RefundReason.UNAVAILABLE
        if amount_total is not None and (
            amount_total != hold.price_cents or (currency or "").lower() != hold.currency
        ):
            # We set the amount ourselves, so this means something is badly wrong: give the money back.
            log.error("payment %s for hold %s was %s %s", payment_intent_id, hold_id, amount_total, currency)
            problem = Ticket.RefundReason.UNAVAILABLE
        now = timezone.now()
        hold.status, hold.closed_at = Hold.Status.COMPLETED, now
        hold.save(update_fields=["status", "closed_at"])
        ticket = Ticket.objects.create(
            space_id=hold.space_id,
            holder_id=hold.buyer_id,
            hold=hold,
            status=Ticket.Status.REFUNDING if problem else Ticket.Status.VALID,
            price_cents=hold.price_cents,
            currency=hold.currency,
            commission_bps=hold.commission_bps,
            commission_cents=hold.commission_cents,
            host_share_cents=hold.host_share_cents,
            stripe_payment_intent_id=payment_intent_id or "",
            refund_reason=problem,
            refund_requested_at=now if problem else None,
        )
        LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.SALE,
            ticket=ticket,
            host_id=hold.space.host_id,
            space_id=hold.space_id,
            currency=ticket.currency,
            gross_cents=ticket.price_cents,
            commission_cents=ticket.commission_cents,
            host_share_cents=ticket.host_share_cents,
            commission_bps=ticket.commission_bps,
            reference=ticket.stripe_payment_intent_id,
        )
        if problem:
            transaction.on_commit(lambda: ticket_refund_process(ticket_id=ticket.pk))
            return f"ticket_refunded_{problem}"
    return "ticket_issued"


# --- Stripe events --------------------------------------------------------------


# The object fields each event type reads, and the types they may have (None: absent or null).
_OBJECT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "metadata": dict,
    "client_reference_id": str,
    "payment_status": str,
    "payment_intent": str,
    "amount_total": int,
    "currency": str,
    "charges_enabled": bool,
    "payouts_enabled": bool,
    "details_submitted": bool,
}
_ID_MAX = WebhookEvent._meta.get_field("event_id").max_length
_TYPE_MAX = WebhookEvent._meta.get_field("type").max_length


def stripe_event_problem(event: Any) -> str:
    """What is wrong with a (verified) event's shape, or "" if `stripe_event_handle` can apply it.

    A correctly signed event can still be malformed (a bug at the provider, or a replayed test
    payload); it is refused with a 400 rather than failing half-way.
    """
    if not isinstance(event, dict):
        return "An event is a JSON object."
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= _ID_MAX:
        return f"id must be a string of 1 to {_ID_MAX} characters."
    if not isinstance(event_type, str) or not 0 < len(event_type) <= _TYPE_MAX:
        return f"type must be a string of 1 to {_TYPE_MAX} characters."
    if type(created) is not int or not 0 <= created < 2**62:
        return "created must be a whole number of seconds."
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "data.object must be an object."
    for name, expected in _OBJECT_FIELDS.items():
        value = data["object"].get(name)
        ok = value is None or (type(value) is int if expected is int else isinstance(value, expected))
        if not ok or (isinstance(value, str) and len(value) > _ID_MAX):
            return f"data.object.{name} has the wrong type or length."
    metadata = data["object"].get("metadata") or {}
    if not all(isinstance(v, str) and len(v) <= _ID_MAX for v in metadata.values()):
        return "data.object.metadata values must be short strings."
    if event_type == "account.updated" and not data["object"].get("id"):
        return "account.updated needs data.object.id."
    return ""


def stripe_event_handle(*, event: Mapping[str, Any]) -> str:
    """Apply one Stripe event, verified by the caller. Returns what happened, for logs and tests.

    Idempotent twice over: an event id is applied once (its row is written in the same transaction
    as its effects), and every handler checks the state of the object it changes, so a different
    event about the same thing (a retry Stripe sent under a new id, `expired` after `completed`)
    changes nothing either.
    """
    event_id, event_type = event["id"], event["type"]
    obj = event["data"]["object"]
    created = int(event.get("created") or 0)
    with transaction.atomic():
        _, fresh = WebhookEvent.objects.get_or_create(
            event_id=event_id, defaults={"type": event_type, "created": created}
        )
        if not fresh:
            return "duplicate_event"
        outcome = _dispatch(event_type, obj, created)
        WebhookEvent.objects.filter(event_id=event_id).update(outcome=outcome)
    log.info("stripe event %s %s: %s", event_type, event_id, outcome)
    return outcome


def _hold_id_of(session: Mapping[str, Any]) -> int | None:
    raw = (session.get("metadata") or {}).get("hold_id") or session.get("client_reference_id")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _dispatch(event_type: str, obj: Mapping[str, Any], created: int) -> str:
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        hold_id = _hold_id_of(obj)
        if hold_id is None:
            return "not_a_ticket"
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            # Delayed payment methods: the ticket comes with async_payment_succeeded.
            return "awaiting_payment"
        return ticket_issue(
            hold_id=hold_id,
            payment_intent_id=obj.get("payment_intent") or "",
            amount_total=obj.get("amount_total"),
            currency=obj.get("currency"),
        )
    if event_type in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        hold_id = _hold_id_of(obj)
        return "not_a_ticket" if hold_id is None else hold_release(hold_id=hold_id)
    if event_type == "account.updated":
        return payout_account_apply(account=obj, event_created=created)
    return "ignored"


# --- refunds --------------------------------------------------------------------


def tickets_refund_on_cancel(*, space: Space, reason: str, **kwargs) -> None:
    """rooms.hooks.space_cancelled: ticket holders get their money back."""
    tickets_refund_for_space(space=space, reason=reason)


def tickets_refund_for_space(*, space: Space, reason: str) -> int:
    """Refund every ticket of a Space in full (commission included, transfer reversed), exactly once.

    Safe to call inside the caller's transaction (space_cancel does): tickets are claimed here and
    the provider is called after commit, so a cancellation that rolls back refunds nothing. Calling
    it again claims nothing new. Returns how many tickets were claimed. Holders are told when each
    refund has gone through.
    """
    if reason not in Ticket.RefundReason.values:
        raise ValueError(f"unknown refund reason {reason!r}")
    now = timezone.now()
    with transaction.atomic():
        ts = TicketSettings.objects.select_for_update().filter(space_id=space.pk).first()
        if ts is None:
            return 0
        if ts.refunds_requested_at is None:
            ts.refunds_requested_at, ts.refund_reason = now, reason
            ts.save(update_fields=["refunds_requested_at", "refund_reason", "updated_at"])
        claimed = Ticket.objects.filter(space_id=space.pk, status=Ticket.Status.VALID).update(
            status=Ticket.Status.REFUNDING, refund_reason=reason, refund_requested_at=now
        )
        if claimed:
            transaction.on_commit(lambda: _enqueue_space_refunds(space_id=space.pk))
    return claimed


def _enqueue_space_refunds(*, space_id: int) -> None:
    from .tasks import refund_space

    try:
        refund_space.delay(space_id)
    except Exception:  # noqa: BLE001 - the broker may be away; the sweep picks these up anyway
        log.exception("could not enqueue refunds for space %s; the sweep will do them", space_id)


def ticket_refund(*, ticket: Ticket, by: User, reason: str = Ticket.RefundReason.MODERATOR) -> bool:
    """A moderator refunds one ticket in full, now. True if this call refunded it."""
    if not by.has_perm("ticketing.refund_ticket"):
        raise PermissionDenied("Only moderators can refund tickets.")
    with transaction.atomic():
        claimed = Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.VALID).update(
            status=Ticket.Status.REFUNDING, refund_reason=reason, refund_requested_at=timezone.now()
        )
        if claimed:
            account_hooks.moderator_acted.send(
                sender=Ticket, by=by, action="ticket_refund", target=ticket, note=f"Reason: {reason}"
            )
    if not claimed and not Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.REFUNDING).exists():
        raise TicketError("This ticket has already been refunded.")
    if ticket_refund_process(ticket_id=ticket.pk):
        return True
    # Another moderator's refund of the same ticket may have completed it while ours was under way:
    # the money is back either way, and both are told so.
    return Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.REFUNDED).exists()


def ticket_refund_process(*, ticket_id: int) -> bool:
    """Carry out a claimed refund: the provider first (idempotent per ticket), then our books.
    A failure leaves the ticket claimed, and the sweep tries again."""
    ticket = Ticket.objects.filter(pk=ticket_id, status=Ticket.Status.REFUNDING).first()
    if ticket is None:
        return False
    try:
        refund_id = get_gateway().refund(
            ticket_id=ticket.pk, payment_intent_id=ticket.stripe_payment_intent_id
        )
    except GatewayError as exc:
        Ticket.objects.filter(pk=ticket.pk).update(
            refund_attempts=F("refund_attempts") + 1, refund_error=str(exc)
        )
        return False
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",)).select_related("space", "holder").get(pk=ticket_id)
        )
        if ticket.status != Ticket.Status.REFUNDING:
            return False
        ticket.status, ticket.refunded_at, ticket.stripe_refund_id = (
            Ticket.Status.REFUNDED,
            timezone.now(),
            refund_id,
        )
        ticket.refund_error = ""
        ticket.save(update_fields=["status", "refunded_at", "stripe_refund_id", "refund_error"])
        LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.REFUND,
            ticket=ticket,
            host_id=ticket.space.host_id,
            space_id=ticket.space_id,
            currency=ticket.currency,
            gross_cents=-ticket.price_cents,
            commission_cents=-ticket.commission_cents,
            host_share_cents=-ticket.host_share_cents,
            commission_bps=ticket.commission_bps,
            reference=refund_id,
        )
        _notify_refunded(ticket)
    return True


def _notify_refunded(ticket: Ticket) -> None:
    """In-app and by email, through the notifications outbox, in the refund's own transaction."""
    amount = format_cents(ticket.price_cents, ticket.currency)
    why = Ticket.RefundReason(ticket.refund_reason).label if ticket.refund_reason else "Refunded"
    notify(
        user=ticket.holder,
        kind="ticket_refund",
        title=f"Refunded: your ticket for “{ticket.space.title}”",
        body=f"{why}. We've refunded {amount} in full to the card you paid with; "
        "it usually shows up within 5–10 days.",
        url=reverse("rooms:space", kwargs={"space_id": ticket.space_id}),
        dedupe_key=f"ticket_refund:{ticket.pk}",
        space_id=ticket.space_id,
    )


# --- the sweep ------------------------------------------------------------------


def tickets_sweep(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Beat's periodic pass: refunds for Spaces that were called off or never started, lapsed
    holds, and refunds that failed before. Every step is safe to repeat or to run twice at once."""
    now = now or timezone.now()
    grace = timedelta(minutes=rules.REFUND_GRACE_MINUTES)
    figures = {"spaces_refunded": 0, "holds_expired": 0, "refunds_done": 0}

    overdue = TicketSettings.objects.filter(refunds_requested_at__isnull=True).filter(
        space__state=Space.State.SCHEDULED,
        space__started_at__isnull=True,
        space__scheduled_for__lt=now - grace,
    )
    for ts in overdue.select_related("space")[:limit]:
        tickets_refund_for_space(space=ts.space, reason=Ticket.RefundReason.NOT_STARTED)
        figures["spaces_refunded"] += 1
    # A safety net for a cancellation whose refund call was lost.
    cancelled = TicketSettings.objects.filter(
        refunds_requested_at__isnull=True, space__state=Space.State.CANCELLED
    )
    for ts in cancelled.select_related("space")[:limit]:
        tickets_refund_for_space(space=ts.space, reason=Ticket.RefundReason.CANCELLED)
        figures["spaces_refunded"] += 1

    lapsed = Hold.objects.filter(status=Hold.Status.OPEN).filter(
        Q(expires_at__lte=now) | Q(space__ticket_settings__refunds_requested_at__isnull=False)
    )
    for hold in lapsed[:limit]:
        figures["holds_expired"] += hold_expire(hold=hold)

    for ticket_id in Ticket.objects.filter(status=Ticket.Status.REFUNDING).values_list("pk", flat=True)[
        :limit
    ]:
        figures["refunds_done"] += ticket_refund_process(ticket_id=ticket_id)
    return figures


def refunds_process_for_space(*, space_id: int) -> int:
    done = 0
    for ticket_id in Ticket.objects.filter(space_id=space_id, status=Ticket.Status.REFUNDING).values_list(
        "pk", flat=True
    ):
        done += ticket_refund_process(ticket_id=ticket_id)
    return done
