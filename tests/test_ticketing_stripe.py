"""What ticketing sends to Stripe, checked on the wire.

The real `stripe` library talks HTTP to tests/stripe_stub.py (STRIPE_API_BASE), which records each
request; the tests assert amount, currency, application fee, destination, idempotency keys.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory
from tests.stripe_stub import start_stripe_stub
from tests.test_ticketing_support import (
    begin,
    checkout_event,
    eligible_host,
    post_event,
    ticketed_space,
    webhook_secret,  # noqa: F401 - fixture
)
from ticketing import services
from ticketing.gateway import StripeGateway, get_gateway
from ticketing.models import Hold, LedgerEntry, PayoutAccount, Ticket

pytestmark = pytest.mark.django_db

SECRET_KEY = "sk_test_spaces_" + "x" * 24


@pytest.fixture
def stripe_stub(settings):
    stub, server = start_stripe_stub()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = stub.url
    yield stub
    server.shutdown()
    server.server_close()
    stripe.api_base = stripe.DEFAULT_API_BASE


def test_the_gateway_is_stripe_pointed_at_the_stub(stripe_stub):
    gateway = get_gateway()
    assert isinstance(gateway, StripeGateway)
    assert stripe.api_base == stripe_stub.url


def test_checkout_is_a_destination_charge_with_the_commission_as_application_fee(stripe_stub):
    host = eligible_host()
    space = ticketed_space(host=host, price_cents=2550, capacity=5)
    buyer = UserFactory(email="buyer@example.com")
    before = int(time.time())
    hold = begin(space, buyer)

    (call,) = stripe_stub.calls("POST", "/v1/checkout/sessions")
    assert call.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert call["mode"] == "payment"
    assert call["line_items[0][quantity]"] == "1"
    assert call["line_items[0][price_data][unit_amount]"] == "2550"
    assert call["line_items[0][price_data][currency]"] == "usd"
    assert call["line_items[0][price_data][product_data][name]"] == "Ticket: Ticketed talk"
    # 3% of $25.50 is 76.5¢, rounded half-up.
    assert call["payment_intent_data[application_fee_amount]"] == "77"
    assert call["payment_intent_data[transfer_data][destination]"] == f"acct_test_{host.pk}"
    assert call["metadata[hold_id]"] == str(hold.pk)
    assert call["client_reference_id"] == str(hold.pk)
    assert call["customer_email"] == "buyer@example.com"
    assert call["success_url"].endswith("?session_id={CHECKOUT_SESSION_ID}")
    assert call["cancel_url"] == "http://testserver/cancelled"
    # Stripe's minimum session life is 30 minutes; our hold is shorter and the sweep closes it.
    assert int(call["expires_at"]) >= before + 30 * 60
    assert call.headers["idempotency-key"] == f"spaces-ticket-hold-{hold.pk}"

    assert hold.checkout_session_id.startswith("cs_test_")
    assert hold.checkout_url == f"https://checkout.stripe.test/c/pay/{hold.checkout_session_id}"
    assert (hold.commission_cents, hold.host_share_cents) == (77, 2473)


def test_high_rate_application_fee_after_the_threshold(stripe_stub):
    host = eligible_host()
    space = ticketed_space(host=host, price_cents=99_900, capacity=5)
    earlier = ticketed_space(host=host, price_cents=1000, capacity=5)
    hold = begin(earlier, UserFactory())
    services.ticket_issue(hold_id=hold.pk, payment_intent_id="pi_1", amount_total=1000, currency="usd")
    LedgerEntry.objects.update(gross_cents=5_000_000, commission_cents=0, host_share_cents=5_000_000)
    begin(space, UserFactory())
    call = stripe_stub.calls("POST", "/v1/checkout/sessions")[-1]
    assert call["line_items[0][price_data][unit_amount]"] == "99900"
    assert call["payment_intent_data[application_fee_amount]"] == "19980"


def test_clicking_buy_again_reuses_the_open_session(stripe_stub):
    space = ticketed_space()
    buyer = UserFactory()
    assert begin(space, buyer).checkout_url == begin(space, buyer).checkout_url
    assert len(stripe_stub.calls("POST", "/v1/checkout/sessions")) == 1


def test_stripe_failure_frees_the_seat_and_says_nothing_was_charged(stripe_stub):
    space = ticketed_space(capacity=1)
    stripe_stub.fail("/v1/checkout/sessions", status=500)
    with pytest.raises(services.TicketError, match="Nothing was charged"):
        begin(space, UserFactory())
    assert Hold.objects.get().status == Hold.Status.FAILED
    stripe_stub.failures.clear()
    assert begin(space, UserFactory()).status == Hold.Status.OPEN


def test_a_stripe_that_does_not_answer_is_given_up_after_the_timeout(stripe_stub, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 1
    space = ticketed_space(capacity=1)
    stripe_stub.stalls["/v1/checkout/sessions"] = hung = threading.Event()
    try:
        with pytest.raises(services.TicketError, match="Nothing was charged"):
            begin(space, UserFactory())
    finally:
        hung.set()
    assert Hold.objects.get().status == Hold.Status.FAILED
    del stripe_stub.stalls["/v1/checkout/sessions"]
    assert begin(space, UserFactory()).status == Hold.Status.OPEN


def test_buy_view_redirects_to_stripe_checkout(client, stripe_stub):
    space = ticketed_space()
    client.force_login(UserFactory())
    response = client.post(reverse("ticketing:buy", args=[space.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    call = stripe_stub.calls("POST", "/v1/checkout/sessions")[0]
    assert call["success_url"] == (
        f"http://testserver/spaces/{space.pk}/tickets/done/?session_id={{CHECKOUT_SESSION_ID}}"
    )


@pytest.mark.usefixtures("webhook_secret")
def test_full_flow_checkout_then_signed_webhook(client, stripe_stub):
    space = ticketed_space(price_cents=4200)
    hold = begin(space, UserFactory())
    stripe_stub.mark_paid(hold.checkout_session_id)
    assert post_event(client, checkout_event(hold)).content == b"ticket_issued"
    assert Ticket.objects.get(hold=hold).price_cents == 4200


def test_lapsed_hold_is_expired_at_stripe_then_released(stripe_stub):
    space = ticketed_space(capacity=1)
    hold = begin(space, UserFactory())
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.tickets_sweep()["holds_expired"] == 1
    (call,) = stripe_stub.calls("POST", f"/v1/checkout/sessions/{hold.checkout_session_id}/expire")
    assert call.headers["authorization"] == f"Bearer {SECRET_KEY}"
    hold.refresh_from_db()
    assert hold.status == Hold.Status.EXPIRED


@pytest.mark.usefixtures("webhook_secret")
def test_lapsed_hold_that_was_paid_meanwhile_is_kept_for_its_completed_event(stripe_stub, client):
    space = ticketed_space(capacity=1)
    hold = begin(space, UserFactory())
    stripe_stub.mark_paid(hold.checkout_session_id)
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.tickets_sweep()["holds_expired"] == 0
    assert stripe_stub.calls("GET", f"/v1/checkout/sessions/{hold.checkout_session_id}")
    hold.refresh_from_db()
    assert hold.status == Hold.Status.OPEN  # the seat stays taken: the buyer has paid
    with pytest.raises(services.SoldOut):
        begin(space, UserFactory())
    assert post_event(client, checkout_event(hold)).content == b"ticket_issued"


def test_sweep_keeps_the_hold_when_stripe_is_unreachable(stripe_stub):
    space = ticketed_space(capacity=1)
    hold = begin(space, UserFactory())
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    stripe_stub.fail("/v1/checkout/sessions/", status=500)
    assert services.tickets_sweep()["holds_expired"] == 0
    hold.refresh_from_db()
    assert hold.status == Hold.Status.OPEN


def refund_calls(stub):
    return stub.calls("POST", "/v1/refunds")


def test_refunds_return_the_commission_and_reverse_the_transfer(
    stripe_stub, django_capture_on_commit_callbacks
):
    space = ticketed_space(price_cents=1000, capacity=5)
    tickets = []
    for _ in range(3):
        hold = begin(space, UserFactory())
        services.ticket_issue(
            hold_id=hold.pk, payment_intent_id=f"pi_{hold.pk}", amount_total=1000, currency="usd"
        )
        tickets.append(Ticket.objects.get(hold=hold))
    services.tickets_refund_for_space(space=space, reason="cancelled")
    assert services.refunds_process_for_space(space_id=space.pk) == 3
    calls = refund_calls(stripe_stub)
    assert len(calls) == 3
    by_intent = {c["payment_intent"]: c for c in calls}
    for ticket in tickets:
        call = by_intent[ticket.stripe_payment_intent_id]
        assert call["reverse_transfer"] == "true"
        assert call["refund_application_fee"] == "true"
        assert "amount" not in call.params  # in full
        assert call["metadata[ticket_id]"] == str(ticket.pk)
        assert call.headers["idempotency-key"] == f"spaces-ticket-refund-{ticket.pk}"
        ticket.refresh_from_db()
        assert ticket.status == Ticket.Status.REFUNDED and ticket.stripe_refund_id.startswith("re_")
    # Again, and by the sweep: nothing more is sent.
    services.tickets_refund_for_space(space=space, reason="cancelled")
    services.refunds_process_for_space(space_id=space.pk)
    services.tickets_sweep()
    assert len(refund_calls(stripe_stub)) == 3
    assert LedgerEntry.objects.filter(kind="refund").count() == 3


def test_failed_refund_is_retried_by_the_sweep_with_the_same_idempotency_key(stripe_stub):
    space = ticketed_space()
    hold = begin(space, UserFactory())
    services.ticket_issue(hold_id=hold.pk, payment_intent_id="pi_retry", amount_total=1000, currency="usd")
    ticket = Ticket.objects.get(hold=hold)
    stripe_stub.fail("/v1/refunds", status=500)
    services.tickets_refund_for_space(space=space, reason="cancelled")
    assert services.refunds_process_for_space(space_id=space.pk) == 0
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.REFUNDING and ticket.refund_attempts == 1
    stripe_stub.failures.clear()
    assert services.tickets_sweep()["refunds_done"] == 1
    keys = {c.headers["idempotency-key"] for c in refund_calls(stripe_stub)}
    assert keys == {f"spaces-ticket-refund-{ticket.pk}"}
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.REFUNDED


def test_already_refunded_at_stripe_counts_as_done(stripe_stub):
    space = ticketed_space()
    hold = begin(space, UserFactory())
    services.ticket_issue(hold_id=hold.pk, payment_intent_id="pi_done", amount_total=1000, currency="usd")
    stripe_stub.fail("/v1/refunds", status=400, code="charge_already_refunded", message="already refunded")
    services.tickets_refund_for_space(space=space, reason="not_started")
    assert services.refunds_process_for_space(space_id=space.pk) == 1
    assert Ticket.objects.get(hold=hold).status == Ticket.Status.REFUNDED


def test_payout_onboarding_creates_an_express_account_and_an_onboarding_link(client, stripe_stub):
    user = UserFactory(email="host@example.com")
    client.force_login(user)
    response = client.post(reverse("ticketing:payouts_connect"))
    (account_call,) = stripe_stub.calls("POST", "/v1/accounts")
    assert account_call["type"] == "express"
    assert account_call["email"] == "host@example.com"
    assert account_call["capabilities[transfers][requested]"] == "true"
    assert account_call["capabilities[card_payments][requested]"] == "true"
    assert account_call.headers["idempotency-key"] == f"spaces-payout-account-{user.pk}"
    account = PayoutAccount.objects.get(user=user)
    (link_call,) = stripe_stub.calls("POST", "/v1/account_links")
    assert link_call["account"] == account.stripe_account_id
    assert link_call["type"] == "account_onboarding"
    assert link_call["return_url"] == "http://testserver/tickets/payouts/return/"
    assert link_call["refresh_url"] == "http://testserver/tickets/payouts/refresh/"
    assert response.status_code == 302
    assert response["Location"].startswith(
        f"https://connect.stripe.test/setup/e/{account.stripe_account_id}/"
    )
    assert not account.ready  # only account.updated may say otherwise

    # An expired link brings the host back to refresh_url, which changes nothing by itself; the
    # seller page's button then asks for a new link for the same account.
    client.get(reverse("ticketing:payouts_refresh"))
    assert len(stripe_stub.calls("POST", "/v1/account_links")) == 1
    client.post(reverse("ticketing:payouts_connect"))
    assert len(stripe_stub.calls("POST", "/v1/accounts")) == 1
    assert len(stripe_stub.calls("POST", "/v1/account_links")) == 2


def test_test_mode_pages_are_gone_when_stripe_is_configured(client, stripe_stub):
    client.force_login(UserFactory())
    assert client.get(reverse("ticketing:local_onboarding", args=["acct_x"])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_moderators_refunding_at_once_are_both_told_it_is_done(stripe_stub):
    from django.contrib.auth.models import Group
    from django.db import connections

    from accounts.groups import MODERATORS, ensure_moderators_group

    ensure_moderators_group()
    moderators = [UserFactory(is_staff=True) for _ in range(2)]
    for m in moderators:
        m.groups.add(Group.objects.get(name=MODERATORS))
    space = ticketed_space(capacity=2)
    hold = begin(space, UserFactory())
    stripe_stub.mark_paid(hold.checkout_session_id)
    services.stripe_event_handle(event=checkout_event(hold))
    ticket = Ticket.objects.get(hold=hold)

    # Stripe holds both refund calls until both moderators are waiting on it.
    stripe_stub.stalls["/v1/refunds"] = release = threading.Event()
    answers: list = []

    def refund(by):
        try:
            answers.append(services.ticket_refund(ticket=ticket, by=by))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refund, args=(m,)) for m in moderators]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.REFUNDING).exists():
            break
        time.sleep(0.05)
    time.sleep(1.0)  # the other moderator's call reaches the stalled Stripe too
    release.set()
    for t in threads:
        t.join(timeout=20)
    del stripe_stub.stalls["/v1/refunds"]
    assert answers == [True, True]
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.REFUNDED
    assert LedgerEntry.objects.filter(ticket=ticket, kind=LedgerEntry.Kind.REFUND).count() == 1
