"""Thin views: parse, call one service, render. The rules are in ticketing.services."""

from __future__ import annotations

import json
import logging
import time

import stripe
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from rooms.models import Space

from . import local, selectors, services
from .commission import format_cents, split
from .forms import TicketSettingsForm
from .gateway import SALES_OFF_MESSAGE, GatewayError, is_test_mode, sales_enabled
from .models import Hold, PayoutAccount, Ticket, TicketSettings

log = logging.getLogger(__name__)


# --- selling: eligibility and payouts -------------------------------------------


@login_required
def seller(request: HttpRequest) -> HttpResponse:
    eligibility = selectors.seller_eligibility(user=request.user)
    return render(
        request,
        "ticketing/seller.html",
        {
            "eligibility": eligibility,
            "account": PayoutAccount.objects.filter(user=request.user).first(),
            "spaces": selectors.sellable_spaces(host=request.user),
            "test_mode": is_test_mode(),
            "sales_off": None if sales_enabled() else SALES_OFF_MESSAGE,
        },
    )


@login_required
@require_POST
def payouts_connect(request: HttpRequest) -> HttpResponse:
    return _to_onboarding(request)


@login_required
def payouts_refresh(request: HttpRequest) -> HttpResponse:
    # Stripe sends the host here (a GET) when an onboarding link has expired. A GET changes nothing,
    # or any page could make someone's browser create an account at the provider: the seller page's
    # button asks for a fresh link with a POST.
    messages.info(request, "That Stripe setup link expired. Press “Continue Stripe setup” for a fresh one.")
    return redirect("ticketing:seller")


def _to_onboarding(request: HttpRequest) -> HttpResponse:
    try:
        url = services.payout_account_onboarding_url(
            user=request.user,
            refresh_url=request.build_absolute_uri(reverse("ticketing:payouts_refresh")),
            return_url=request.build_absolute_uri(reverse("ticketing:payouts_return")),
        )
    except (GatewayError, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return redirect("ticketing:seller")
    return redirect(url)


@login_required
def payouts_return(request: HttpRequest) -> HttpResponse:
    messages.info(request, "Thanks. Your payout status updates here as soon as Stripe confirms it.")
    return redirect("ticketing:seller")


# --- ticket settings for a Space ------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def ticket_settings(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    if space.host_id != request.user.pk:
        raise PermissionDenied("Only the host can manage tickets for this Space.")
    current = TicketSettings.objects.filter(space=space).first()
    eligibility = selectors.seller_eligibility(user=request.user)
    if request.method == "POST":
        form = TicketSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.ticket_settings_save(
                    space=space,
                    by=request.user,
                    price_cents=form.price_cents,
                    capacity=form.cleaned_data["capacity"],
                    sales_close_at=form.cleaned_data["sales_close_at"],
                )
            except ValidationError as exc:
                field = {
                    "price_locked": "price",
                    "price_range": "price",
                    "close_in_past": "sales_close_at",
                }.get(exc.code or "", "capacity" if (exc.code or "").startswith("capacity") else None)
                form.add_error(field, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Ticket settings saved.")
                return redirect(space.get_absolute_url())
    elif current is not None:
        form = TicketSettingsForm(
            initial={
                "price": f"{current.price_cents / 100:.2f}",
                "capacity": current.capacity,
                "sales_close_at": current.sales_close_at,
            }
        )
    else:
        form = TicketSettingsForm(initial={"price": "5.00", "capacity": 100})
    sold, held = selectors.seats_taken(space_id=space.pk)
    lifetime = selectors.lifetime_earnings_cents(host=request.user)
    example = split(price_cents=current.price_cents if current else 500, lifetime_cents=lifetime)
    return render(
        request,
        "ticketing/settings.html",
        {
            "space": space,
            "form": form,
            "current": current,
            "eligibility": eligibility,
            "can_edit": current is not None or eligibility.allowed,
            "sold": sold,
            "held": held,
            "price_locked": current is not None and Ticket.objects.filter(space=space).exists(),
            "rate_percent": example.rate_bps / 100,
            "test_mode": is_test_mode(),
            "sales_off": None if sales_enabled() else SALES_OFF_MESSAGE,
        },
    )


# --- buying ---------------------------------------------------------------------


@login_required
@require_POST
def buy(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space, pk=space_id)
    return_url = request.build_absolute_uri(reverse("ticketing:checkout_return", args=[space.pk]))
    try:
        hold = services.ticket_purchase_begin(
            space=space,
            buyer=request.user,
            success_url=return_url + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=request.build_absolute_uri(reverse("ticketing:checkout_cancel", args=[space.pk])),
        )
    except services.AlreadyHasTicket as exc:
        messages.info(request, str(exc))
        return redirect(space.get_absolute_url())
    except (services.TicketError, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return redirect(space.get_absolute_url())
    return redirect(hold.checkout_url)


@login_required
def checkout_return(request: HttpRequest, space_id: int) -> HttpResponse:
    """Where checkout sends the buyer after paying. The ticket comes from the webhook, which is
    usually here first; if not, this page waits for it."""
    space = get_object_or_404(Space, pk=space_id)
    if Ticket.objects.filter(space=space, holder=request.user, status=Ticket.Status.VALID).exists():
        messages.success(request, "You're in. Your ticket is confirmed.")
        return redirect(space.get_absolute_url())
    refunded = (
        Ticket.objects.filter(space=space, holder=request.user)
        .exclude(status=Ticket.Status.VALID)
        .order_by("-created_at")
        .first()
    )
    return render(request, "ticketing/checkout_return.html", {"space": space, "refunded": refunded})


@login_required
@require_http_methods(["GET", "POST"])
def checkout_cancel(request: HttpRequest, space_id: int) -> HttpResponse:
    """Where checkout sends a buyer who backs out (a GET: nothing changes, the seat stays held until
    the hold lapses), and where the ticket box's "Give up my seat" posts to close the checkout."""
    space = get_object_or_404(Space, pk=space_id)
    if request.method == "GET":
        messages.info(request, "Checkout cancelled. You haven't been charged.")
        return redirect(space.get_absolute_url())
    for hold in Hold.objects.filter(space=space, buyer=request.user, status=Hold.Status.OPEN):
        services.hold_expire(hold=hold)
    messages.info(request, "Your seat is back on sale. You haven't been charged.")
    return redirect(space.get_absolute_url())


# --- the webhook ----------------------------------------------------------------


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    # Stripe signs platform events and Connect events (account.updated of hosts' accounts) at two
    # endpoints with two secrets; both may point here, so STRIPE_WEBHOOK_SECRET may list both.
    secrets = [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
    if not secrets:
        return HttpResponseBadRequest("Stripe webhooks are not configured on this server.")
    signature = request.headers.get("Stripe-Signature") or ""
    try:
        payload = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return HttpResponseBadRequest("Malformed payload: not UTF-8.")
    tolerance = stripe.Webhook.DEFAULT_TOLERANCE
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance)
            break
        except stripe.SignatureVerificationError as exc:
            failure = exc
    else:
        log.warning("refused a webhook: %s", failure)
        return HttpResponseBadRequest("Bad signature.")
    # The library refuses old signatures only; one from the future is as suspect (a replay kept
    # for later, or a sender's clock that is wrong).
    if _signed_at(signature) > time.time() + tolerance:
        log.warning("refused a webhook signed in the future: %s", signature[:40])
        return HttpResponseBadRequest("Bad signature: its timestamp is in the future.")
    try:
        event = json.loads(payload)
        problem = services.stripe_event_problem(event)
        json.dumps(event, ensure_ascii=False).encode()  # lone surrogates can't be stored
    except (ValueError, RecursionError):
        problem = "not JSON text"
    if problem:
        log.warning("refused a malformed webhook event: %s", problem)
        return HttpResponseBadRequest(f"Malformed event: {problem}")
    outcome = services.stripe_event_handle(event=event)
    return HttpResponse(outcome, content_type="text/plain")


def _signed_at(signature: str) -> int:
    """The t= of a Stripe-Signature header that has already been verified."""
    for item in signature.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    return 0


# --- earnings -------------------------------------------------------------------


@login_required
def earnings(request: HttpRequest) -> HttpResponse:
    return render(request, "ticketing/earnings.html", selectors.host_earnings(host=request.user))


# --- local test mode: stand-ins for Stripe's own pages ----------------------------


def _test_mode_only() -> None:
    if not is_test_mode():
        raise Http404(
            "The test checkout only exists in test mode (no Stripe key, and DEBUG or STRIPE_TEST_MODE on)."
        )


@login_required
@require_http_methods(["GET", "POST"])
def local_checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    _test_mode_only()
    hold = get_object_or_404(
        Hold.objects.select_related("space", "space__host"), checkout_session_id=session_id
    )
    if hold.buyer_id != request.user.pk:
        raise Http404("No such checkout.")
    declined = False
    if request.method == "POST" and hold.status == Hold.Status.OPEN:
        outcome = request.POST.get("outcome")
        if outcome == "succeed":
            services.stripe_event_handle(event=local.checkout_event(hold=hold, kind="completed"))
            return redirect(
                reverse("ticketing:checkout_return", args=[hold.space_id]) + f"?session_id={session_id}"
            )
        if outcome == "abandon":
            services.stripe_event_handle(event=local.checkout_event(hold=hold, kind="expired"))
            messages.info(
                request, "Checkout abandoned. The seat is back on sale and you haven't been charged."
            )
            return redirect(hold.space.get_absolute_url())
        # "decline": like a declined card on Stripe's page, checkout stays open for another try.
        declined = True
    return render(
        request,
        "ticketing/local_checkout.html",
        {
            "hold": hold,
            "space": hold.space,
            "price": format_cents(hold.price_cents, hold.currency),
            "declined": declined,
            "expires_in": max(int((hold.expires_at - timezone.now()).total_seconds() // 60), 0),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def local_onboarding(request: HttpRequest, account_id: str) -> HttpResponse:
    _test_mode_only()
    account = get_object_or_404(PayoutAccount, stripe_account_id=account_id, user=request.user)
    if request.method == "POST":
        services.stripe_event_handle(event=local.account_event(account=account, ready=True))
        messages.success(request, "Test payout account connected.")
        return redirect("ticketing:seller")
    return render(request, "ticketing/local_onboarding.html", {"account": account})
