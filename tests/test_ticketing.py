"""Ticketed Spaces: who may sell, ticket settings, the split, holds, purchase, refunds, access, earnings.

These run in the local test mode (no STRIPE_SECRET_KEY); the same services face Stripe in
test_ticketing_stripe.py, and the webhook endpoint is specified in test_ticketing_webhooks.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rooms.models import Participant, Space
from tests.factories import UserFactory
from tests.test_ticketing_support import begin, checkout_event, eligible_host, scheduled_space, ticketed_space
from ticketing import commission, selectors, services
from ticketing.models import Hold, LedgerEntry, PayoutAccount, Ticket, TicketSettings

pytestmark = pytest.mark.django_db


def complete(hold: Hold) -> str:
    return services.stripe_event_handle(event=checkout_event(hold, "completed"))


def buy(space, buyer=None) -> Ticket:
    buyer = buyer or UserFactory()
    hold = begin(space, buyer)
    assert complete(hold) == "ticket_issued"
    return Ticket.objects.get(hold=hold)


# --- the split (property tests) ----------------------------------------------------

PRICES = st.integers(min_value=100, max_value=99_900)
LIFETIMES = st.integers(min_value=0, max_value=20_000_000)


@given(price=PRICES, lifetime=LIFETIMES)
@hsettings(max_examples=500, deadline=None)
def test_commission_and_host_share_always_add_up_to_the_price(price, lifetime):
    parts = commission.split(price_cents=price, lifetime_cents=lifetime)
    assert parts.commission_cents + parts.host_share_cents == price
    assert 0 <= parts.commission_cents <= price
    assert parts.host_share_cents > 0


@given(price=PRICES, lifetime=LIFETIMES)
@hsettings(max_examples=500, deadline=None)
def test_rate_is_3_percent_below_50000_dollars_lifetime_and_20_percent_from_it(price, lifetime):
    parts = commission.split(price_cents=price, lifetime_cents=lifetime)
    expected_rate = 300 if lifetime < 5_000_000 else 2000
    assert parts.rate_bps == expected_rate
    # Half-up rounding, checked against exact rational arithmetic.
    exact_times_2 = 2 * price * expected_rate  # twice the commission, in units of 1/10_000 cent
    assert parts.commission_cents == (exact_times_2 + 10_000) // 20_000


@given(price=st.integers(min_value=0, max_value=10**9), rate=st.integers(min_value=0, max_value=10_000))
@hsettings(max_examples=300, deadline=None)
def test_commission_is_within_half_a_cent_of_exact(price, rate):
    got = commission.commission_for(price_cents=price, rate_bps=rate)
    assert abs(got * 10_000 - price * rate) <= 5_000


def test_half_cents_round_up():
    assert commission.commission_for(price_cents=150, rate_bps=300) == 5  # 4.5 → 5
    assert commission.commission_for(price_cents=149, rate_bps=300) == 4  # 4.47 → 4
    assert commission.commission_for(price_cents=250, rate_bps=2000) == 50
    assert commission.split(price_cents=99_900, lifetime_cents=0).commission_cents == 2997


def test_threshold_boundary_uses_rate_in_force_before_the_sale():
    below = commission.split(price_cents=10_000, lifetime_cents=4_999_999)
    at = commission.split(price_cents=10_000, lifetime_cents=5_000_000)
    assert (below.rate_bps, below.commission_cents) == (300, 300)
    assert (at.rate_bps, at.commission_cents) == (2000, 2000)


def test_sale_crossing_the_threshold_is_priced_at_the_low_rate():
    host = eligible_host()
    space = ticketed_space(host=host, price_cents=99_900, capacity=100)
    # Lifetime just below $50,000: this sale takes it over, and is still charged 3%.
    first = buy(space)
    LedgerEntry.objects.filter(ticket=first).update(host_share_cents=4_999_000, gross_cents=5_001_997)
    LedgerEntry.objects.filter(ticket=first).update(commission_cents=2997)
    assert selectors.lifetime_earnings_cents(host=host) == 4_999_000
    crossing = buy(space)
    assert crossing.commission_bps == 300
    assert crossing.commission_cents == 2997
    assert selectors.lifetime_earnings_cents(host=host) == 4_999_000 + 96_903
    after = buy(space)
    assert (after.commission_bps, after.commission_cents, after.host_share_cents) == (2000, 19_980, 79_920)


# --- who may sell ------------------------------------------------------------------


def conditions(user) -> dict[str, bool]:
    return {c.key: c.met for c in selectors.seller_eligibility(user=user).conditions}


def test_an_eligible_host_meets_every_condition():
    host = eligible_host()
    assert all(conditions(host).values())
    assert selectors.seller_eligibility(user=host).allowed


def test_999_followers_cannot_sell_1000_can():
    host = eligible_host(follower_count=999)
    assert conditions(host)["followers"] is False
    assert not selectors.seller_eligibility(user=host).allowed
    host.follower_count = 1000
    assert conditions(host)["followers"] is True


def test_age_boundary_is_the_18th_birthday():
    today = timezone.now().date()
    host = eligible_host(date_of_birth=date(today.year - 18, today.month, today.day))
    assert conditions(host)["age"] is True
    host.date_of_birth = host.date_of_birth + timedelta(days=1)
    assert conditions(host)["age"] is False


def test_age_unknown_is_lacking_and_says_what_to_do():
    host = eligible_host()
    host.date_of_birth = None
    age = next(c for c in selectors.seller_eligibility(user=host).conditions if c.key == "age")
    assert not age.met and "date of birth" in age.detail


def test_two_spaces_in_30_days_is_not_enough_three_is():
    host = eligible_host()
    Space.objects.filter(host=host).order_by("started_at").first().delete()
    assert conditions(host)["recent_spaces"] is False
    Space.objects.create(host=host, title="Third", state=Space.State.LIVE, started_at=timezone.now())
    assert conditions(host)["recent_spaces"] is True


def test_a_space_started_just_over_30_days_ago_no_longer_counts():
    host = eligible_host()
    oldest = Space.objects.filter(host=host).order_by("started_at").first()
    now = timezone.now()
    oldest.started_at = now - timedelta(days=30) + timedelta(seconds=5)
    oldest.save()
    assert conditions(host)["recent_spaces"] is True
    oldest.started_at = now - timedelta(days=30) - timedelta(seconds=5)
    oldest.save()
    assert conditions(host)["recent_spaces"] is False


def test_scheduled_or_cancelled_spaces_that_never_started_do_not_count():
    host = eligible_host()
    Space.objects.filter(host=host).update(started_at=None, state=Space.State.CANCELLED)
    scheduled_space(host)
    assert conditions(host)["recent_spaces"] is False


def test_payout_account_must_be_ready():
    host = eligible_host()
    PayoutAccount.objects.filter(user=host).update(charges_enabled=False)
    assert conditions(host)["payouts"] is False
    PayoutAccount.objects.filter(user=host).delete()
    assert conditions(host)["payouts"] is False


def test_suspended_host_cannot_sell():
    host = eligible_host(is_suspended=True)
    assert conditions(host)["standing"] is False


def test_seller_page_shows_each_condition_met_or_lacking(client):
    host = eligible_host(follower_count=12)
    client.force_login(host)
    html = client.get(reverse("ticketing:seller")).content.decode()
    assert 'data-testid="condition-followers" data-met="no"' in html
    assert "You have 12." in html
    for key in ("age", "recent_spaces", "payouts", "standing"):
        assert f'data-testid="condition-{key}" data-met="yes"' in html
    assert 'data-testid="can-sell"' not in html


# --- ticket settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "ok"), [(99, False), (100, True), (99_900, True), (99_901, False), (0, False), (-100, False)]
)
def test_price_boundaries(price, ok):
    host = eligible_host()
    space = scheduled_space(host)
    save = lambda: services.ticket_settings_save(  # noqa: E731
        space=space, by=host, price_cents=price, capacity=5, sales_close_at=None
    )
    if ok:
        assert save().price_cents == price
    else:
        with pytest.raises(ValidationError, match=r"between \$1\.00 and \$999\.00"):
            save()
        assert not TicketSettings.objects.filter(space=space).exists()


@pytest.mark.parametrize(
    ("typed", "status", "saved"),
    [
        ("0.99", 200, None),
        ("1.00", 302, 100),
        ("999.00", 302, 99_900),
        ("999.01", 200, None),
        ("12.345", 200, None),
    ],
)
def test_price_form_in_dollars(client, typed, status, saved):
    host = eligible_host()
    space = scheduled_space(host)
    client.force_login(host)
    response = client.post(
        reverse("ticketing:settings", args=[space.pk]),
        {"price": typed, "capacity": "10", "sales_close_at": ""},
    )
    assert response.status_code == status
    ts = TicketSettings.objects.filter(space=space).first()
    assert (ts.price_cents if ts else None) == saved


def test_only_the_host_sets_tickets():
    host = eligible_host()
    space = scheduled_space(host)
    with pytest.raises(PermissionDenied):
        services.ticket_settings_save(
            space=space, by=eligible_host(), price_cents=500, capacity=5, sales_close_at=None
        )


def test_an_ineligible_host_cannot_start_selling():
    host = eligible_host(follower_count=999)
    space = scheduled_space(host)
    with pytest.raises(PermissionDenied, match="1,000 followers"):
        services.ticket_settings_save(space=space, by=host, price_cents=500, capacity=5, sales_close_at=None)


def test_ended_spaces_cannot_sell_tickets():
    host = eligible_host()
    space = scheduled_space(host)
    Space.objects.filter(pk=space.pk).update(state=Space.State.ENDED)
    with pytest.raises(ValidationError, match="scheduled or live"):
        services.ticket_settings_save(space=space, by=host, price_cents=500, capacity=5, sales_close_at=None)


def test_price_change_after_a_sale_is_refused_but_cap_can_grow():
    space = ticketed_space(price_cents=500, capacity=2)
    services.ticket_settings_save(
        space=space, by=space.host, price_cents=700, capacity=2, sales_close_at=None
    )
    buy(space)
    with pytest.raises(ValidationError, match="price can't change"):
        services.ticket_settings_save(
            space=space, by=space.host, price_cents=900, capacity=2, sales_close_at=None
        )
    services.ticket_settings_save(
        space=space, by=space.host, price_cents=700, capacity=5, sales_close_at=None
    )
    assert TicketSettings.objects.get(space=space).capacity == 5


def test_cap_below_sold_is_refused_cap_equal_to_sold_is_fine():
    space = ticketed_space(capacity=5)
    buy(space), buy(space)
    with pytest.raises(ValidationError, match="sold 2 tickets"):
        services.ticket_settings_save(
            space=space, by=space.host, price_cents=1000, capacity=1, sales_close_at=None
        )
    services.ticket_settings_save(
        space=space, by=space.host, price_cents=1000, capacity=2, sales_close_at=None
    )


def test_cap_below_sold_plus_held_is_refused():
    space = ticketed_space(capacity=5)
    buy(space)
    begin(space, UserFactory())
    with pytest.raises(ValidationError, match="paying for a ticket right now"):
        services.ticket_settings_save(
            space=space, by=space.host, price_cents=1000, capacity=1, sales_close_at=None
        )


def test_sales_close_time_must_be_in_the_future_and_closes_sales():
    space = ticketed_space()
    with pytest.raises(ValidationError, match="future"):
        services.ticket_settings_save(
            space=space,
            by=space.host,
            price_cents=1000,
            capacity=10,
            sales_close_at=timezone.now() - timedelta(minutes=1),
        )
    TicketSettings.objects.filter(space=space).update(sales_close_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.TicketError, match="sales have closed"):
        begin(space, UserFactory())


# --- holds and purchase ----------------------------------------------------------------


def test_buying_holds_a_seat_then_completion_issues_a_ticket_and_ledger_row():
    space = ticketed_space(price_cents=1500, capacity=3)
    buyer = UserFactory()
    hold = begin(space, buyer)
    assert hold.status == Hold.Status.OPEN
    assert hold.checkout_url.startswith("/tickets/test-checkout/")
    assert selectors.seats_taken(space_id=space.pk) == (0, 1)
    assert (hold.commission_cents, hold.host_share_cents) == (45, 1455)
    assert complete(hold) == "ticket_issued"
    ticket = Ticket.objects.get(holder=buyer)
    assert (ticket.status, ticket.price_cents, ticket.commission_cents, ticket.host_share_cents) == (
        Ticket.Status.VALID,
        1500,
        45,
        1455,
    )
    sale = LedgerEntry.objects.get(ticket=ticket)
    assert (sale.kind, sale.gross_cents, sale.commission_cents, sale.host_share_cents) == (
        "sale",
        1500,
        45,
        1455,
    )
    assert selectors.seats_taken(space_id=space.pk) == (1, 0)


def test_the_last_ticket_sells_and_the_next_buyer_is_told_sold_out():
    space = ticketed_space(capacity=2)
    buy(space)
    last = begin(space, UserFactory())  # the last seat, held
    with pytest.raises(services.SoldOut, match="someone's checkout"):
        begin(space, UserFactory())
    complete(last)
    with pytest.raises(services.SoldOut, match="Sold out"):
        begin(space, UserFactory())
    assert Ticket.objects.filter(space=space, status=Ticket.Status.VALID).count() == 2


def test_one_ticket_per_person():
    space = ticketed_space()
    ticket = buy(space)
    with pytest.raises(services.AlreadyHasTicket):
        begin(space, ticket.holder)


def test_clicking_buy_twice_resumes_the_same_checkout():
    space = ticketed_space(capacity=5)
    buyer = UserFactory()
    assert begin(space, buyer).pk == begin(space, buyer).pk
    assert selectors.seats_taken(space_id=space.pk) == (0, 1)


def test_host_does_not_buy_their_own_ticket():
    space = ticketed_space()
    with pytest.raises(services.TicketError, match="host"):
        begin(space, space.host)


def test_abandoned_checkout_releases_the_seat():
    space = ticketed_space(capacity=1)
    hold = begin(space, UserFactory())
    assert services.stripe_event_handle(event=checkout_event(hold, "expired")) == "hold_released"
    assert selectors.seats_taken(space_id=space.pk) == (0, 0)
    begin(space, UserFactory())


def test_lapsed_holds_are_swept_and_the_seat_goes_back_on_sale():
    space = ticketed_space(capacity=1)
    hold = begin(space, UserFactory())
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.SoldOut):  # still counted until the checkout is closed
        begin(space, UserFactory())
    assert services.tickets_sweep()["holds_expired"] == 1
    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.EXPIRED
    begin(space, UserFactory())


def test_a_buyer_whose_own_hold_lapsed_can_start_again():
    space = ticketed_space(capacity=1)
    buyer = UserFactory()
    first = begin(space, buyer)
    Hold.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    second = begin(space, buyer)
    assert second.pk != first.pk
    assert Hold.objects.get(pk=first.pk).status == Hold.Status.EXPIRED


def test_payment_after_the_hold_was_released_gets_a_free_seat():
    space = ticketed_space(capacity=2)
    hold = begin(space, UserFactory())
    services.hold_release(hold_id=hold.pk)
    assert complete(hold) == "ticket_issued"


def test_payment_after_the_hold_was_released_and_the_seat_resold_is_refunded(
    django_capture_on_commit_callbacks,
):
    space = ticketed_space(capacity=1)
    late = begin(space, UserFactory())
    services.hold_release(hold_id=late.pk)
    buy(space)  # someone else takes the last seat
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(late) == "ticket_refunded_unavailable"
    ticket = Ticket.objects.get(hold=late)
    assert ticket.status == Ticket.Status.REFUNDED
    assert list(LedgerEntry.objects.filter(ticket=ticket).values_list("kind", "gross_cents")) == [
        ("refund", -1000),
        ("sale", 1000),
    ]
    assert Ticket.objects.filter(space=space, status=Ticket.Status.VALID).count() == 1


def test_sales_stop_when_the_host_is_suspended_or_the_space_ends():
    space = ticketed_space()
    type(space.host).objects.filter(pk=space.host_id).update(is_suspended=True)
    with pytest.raises(services.TicketError, match="on sale"):
        begin(space, UserFactory())
    type(space.host).objects.filter(pk=space.host_id).update(is_suspended=False)
    Space.objects.filter(pk=space.pk).update(state=Space.State.ENDED)
    with pytest.raises(services.TicketError, match="ended"):
        begin(space, UserFactory())


def test_buy_view_redirects_to_checkout_and_back_with_messages(client):
    space = ticketed_space(capacity=1)
    buyer = UserFactory()
    client.force_login(buyer)
    response = client.post(reverse("ticketing:buy", args=[space.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith("/tickets/test-checkout/cs_local_")
    other = UserFactory()
    client.force_login(other)
    response = client.post(reverse("ticketing:buy", args=[space.pk]), follow=True)
    assert response.status_code == 200
    assert "Sold out" in response.content.decode()


def test_local_checkout_succeed_decline_abandon(client):
    space = ticketed_space(capacity=2)
    buyer = UserFactory()
    client.force_login(buyer)
    url = client.post(reverse("ticketing:buy", args=[space.pk]))["Location"]
    page = client.get(url)
    assert "Test mode" in page.content.decode()
    declined = client.post(url, {"outcome": "decline"})
    assert declined.status_code == 200 and 'data-testid="declined"' in declined.content.decode()
    assert Hold.objects.get(buyer=buyer).status == Hold.Status.OPEN
    done = client.post(url, {"outcome": "succeed"}, follow=True)
    assert done.redirect_chain[-1][0] == space.get_absolute_url()
    assert Ticket.objects.get(holder=buyer).status == Ticket.Status.VALID

    quitter = UserFactory()
    client.force_login(quitter)
    url = client.post(reverse("ticketing:buy", args=[space.pk]))["Location"]
    client.post(url, {"outcome": "abandon"})
    assert Hold.objects.get(buyer=quitter).status == Hold.Status.EXPIRED
    assert not Ticket.objects.filter(holder=quitter).exists()


def test_someone_elses_local_checkout_is_not_found(client):
    space = ticketed_space()
    hold = begin(space, UserFactory())
    client.force_login(UserFactory())
    assert client.post(hold.checkout_url, {"outcome": "succeed"}).status_code == 404
    assert not Ticket.objects.exists()


@override_settings(STRIPE_SECRET_KEY="sk_test_x", STRIPE_API_BASE="http://127.0.0.1:9")
def test_local_checkout_does_not_exist_when_stripe_is_configured(client):
    client.force_login(UserFactory())
    assert client.get(reverse("ticketing:local_checkout", args=["cs_local_1_ab"])).status_code == 404


def test_checkout_cancel_page_releases_the_buyers_hold_only_on_post(client):
    space = ticketed_space(capacity=1)
    buyer = UserFactory()
    begin(space, buyer)
    client.force_login(buyer)
    # A GET (Stripe's cancel link, or any site's <img>) changes nothing.
    client.get(reverse("ticketing:checkout_cancel", args=[space.pk]))
    assert selectors.seats_taken(space_id=space.pk) == (0, 1)
    page = client.get(space.get_absolute_url()).content.decode()
    assert 'data-testid="give-up-seat"' in page
    client.post(reverse("ticketing:checkout_cancel", args=[space.pk]))
    assert selectors.seats_taken(space_id=space.pk) == (0, 0)


def test_payouts_refresh_by_get_creates_no_account(client):
    user = UserFactory()
    client.force_login(user)
    response = client.get(reverse("ticketing:payouts_refresh"), follow=True)
    assert not PayoutAccount.objects.filter(user=user).exists()
    assert "Continue Stripe setup" in response.content.decode()


# --- refunds ---------------------------------------------------------------------------


def test_cancelling_refunds_every_ticket_in_full_exactly_once(django_capture_on_commit_callbacks):
    space = ticketed_space(capacity=5)
    tickets = [buy(space) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.tickets_refund_for_space(space=space, reason="cancelled") == 3
    assert len(callbacks) == 1
    assert services.tickets_refund_for_space(space=space, reason="cancelled") == 0  # nothing new to claim
    assert services.refunds_process_for_space(space_id=space.pk) == 3
    assert services.refunds_process_for_space(space_id=space.pk) == 0
    assert services.tickets_sweep()["refunds_done"] == 0
    for t in tickets:
        t.refresh_from_db()
        assert (t.status, t.refund_reason) == (Ticket.Status.REFUNDED, "cancelled")
        assert t.stripe_refund_id == f"re_local_{t.pk}"
    refunds = LedgerEntry.objects.filter(space=space, kind="refund")
    assert refunds.count() == 3
    assert sum(r.gross_cents for r in refunds) == -3000
    assert sum(r.commission_cents for r in refunds) == -90  # commission comes back too
    assert selectors.lifetime_earnings_cents(host=space.host) == 0


def test_refund_holders_are_notified_once(django_capture_on_commit_callbacks):
    from notifications.models import Delivery

    space = ticketed_space()
    ticket = buy(space)
    services.tickets_refund_for_space(space=space, reason="cancelled")
    services.refunds_process_for_space(space_id=space.pk)
    services.refunds_process_for_space(space_id=space.pk)
    rows = Delivery.objects.filter(recipient=ticket.holder, kind="ticket_refund")
    assert rows.count() == 1
    assert "Refunded" in rows.get().title and "$10.00" in rows.get().body


def test_cancelled_space_stops_sales_and_refunds_late_payments(django_capture_on_commit_callbacks):
    space = ticketed_space(capacity=5)
    hold = begin(space, UserFactory())
    services.tickets_refund_for_space(space=space, reason="cancelled")
    with pytest.raises(services.TicketError, match="called off"):
        begin(space, UserFactory())
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(hold) == "ticket_refunded_unavailable"
    assert Ticket.objects.get(hold=hold).status == Ticket.Status.REFUNDED


def test_space_not_started_within_grace_is_refunded_by_the_sweep(monkeypatch):
    monkeypatch.setattr("ticketing.rules.REFUND_GRACE_MINUTES", 60)
    space = ticketed_space()
    ticket = buy(space)
    start = timezone.now() - timedelta(minutes=59)
    Space.objects.filter(pk=space.pk).update(scheduled_for=start)
    assert services.tickets_sweep()["spaces_refunded"] == 0
    Space.objects.filter(pk=space.pk).update(scheduled_for=timezone.now() - timedelta(minutes=61))
    figures = services.tickets_sweep()
    assert figures["spaces_refunded"] == 1
    assert services.tickets_sweep()["spaces_refunded"] == 0
    ticket.refresh_from_db()
    assert (ticket.status, ticket.refund_reason) == (Ticket.Status.REFUNDED, "not_started")


def test_a_space_that_went_live_is_not_refunded():
    space = ticketed_space()
    ticket = buy(space)
    Space.objects.filter(pk=space.pk).update(
        state=Space.State.LIVE, started_at=timezone.now(), scheduled_for=timezone.now() - timedelta(days=1)
    )
    services.tickets_sweep()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.VALID


def test_sweep_refunds_a_cancelled_space_whose_refund_call_was_lost():
    space = ticketed_space()
    ticket = buy(space)
    Space.objects.filter(pk=space.pk).update(state=Space.State.CANCELLED)
    services.tickets_sweep()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.REFUNDED


def test_refund_claimed_inside_a_rolled_back_cancel_does_nothing():
    from django.db import transaction

    space = ticketed_space()
    ticket = buy(space)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.tickets_refund_for_space(space=space, reason="cancelled")
        raise RuntimeError("space_cancel failed")
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.VALID
    assert TicketSettings.objects.get(space=space).refunds_requested_at is None


def test_moderator_refunds_one_ticket_from_the_admin(client):
    from accounts.groups import ensure_moderators_group

    space = ticketed_space()
    ticket, other = buy(space), buy(space)
    moderator = UserFactory(is_staff=True)
    moderator.groups.add(ensure_moderators_group())
    client.force_login(moderator)
    url = reverse("admin:ticketing_ticket_changelist")
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"action": "refund_ticket", "_selected_action": [ticket.pk, other.pk]}, follow=True
    )
    assert "exactly one" in response.content.decode()
    response = client.post(url, {"action": "refund_ticket", "_selected_action": [ticket.pk]}, follow=True)
    assert "Refunded ticket" in response.content.decode()
    ticket.refresh_from_db(), other.refresh_from_db()
    assert (ticket.status, ticket.refund_reason) == (Ticket.Status.REFUNDED, "moderator")
    assert other.status == Ticket.Status.VALID
    response = client.post(url, {"action": "refund_ticket", "_selected_action": [ticket.pk]}, follow=True)
    assert "already been refunded" in response.content.decode()
    assert LedgerEntry.objects.filter(ticket=ticket, kind="refund").count() == 1


def test_people_without_the_refund_permission_cannot_refund():
    space = ticketed_space()
    ticket = buy(space)
    with pytest.raises(PermissionDenied):
        services.ticket_refund(ticket=ticket, by=UserFactory(is_staff=True))


def test_a_refunded_buyer_may_buy_again():
    space = ticketed_space()
    ticket = buy(space)
    moderator = UserFactory(is_superuser=True)
    services.ticket_refund(ticket=ticket, by=moderator)
    again = buy(space, ticket.holder)
    assert again.status == Ticket.Status.VALID


# --- access ----------------------------------------------------------------------------


def test_ticket_access_for_holders_host_cohosts_and_invited_speakers_only():
    space = ticketed_space()
    holder = buy(space).holder
    stranger, cohost, invited, listener = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    Participant.objects.create(space=space, user=cohost, role=Participant.Role.COHOST)
    Participant.objects.create(
        space=space, user=invited, role=Participant.Role.LISTENER, invited_at=timezone.now()
    )
    Participant.objects.create(space=space, user=listener, role=Participant.Role.LISTENER)
    for person, allowed in [
        (space.host, True),
        (holder, True),
        (cohost, True),
        (invited, True),
        (stranger, False),
        (listener, False),
    ]:
        assert selectors.has_ticket_access(space=space, user=person) is allowed, person
    from django.contrib.auth.models import AnonymousUser

    assert selectors.has_ticket_access(space=space, user=AnonymousUser()) is False


def test_a_refunded_ticket_gives_no_access_and_unticketed_spaces_are_open():
    space = ticketed_space()
    ticket = buy(space)
    services.tickets_refund_for_space(space=space, reason="cancelled")
    assert selectors.has_ticket_access(space=space, user=ticket.holder) is False
    open_space = scheduled_space(eligible_host())
    assert selectors.has_ticket_access(space=open_space, user=UserFactory()) is True


def test_ticket_box_modes():
    space = ticketed_space(price_cents=1234, capacity=1)
    buyer = UserFactory()
    mode = lambda viewer: selectors.ticket_box(space=space, viewer=viewer)["ticket_box"]["mode"]  # noqa: E731
    from django.contrib.auth.models import AnonymousUser

    assert mode(AnonymousUser()) == "sign_in"
    assert mode(buyer) == "buy"
    assert selectors.ticket_box(space=space, viewer=buyer)["ticket_box"]["price"] == "$12.34"
    hold = begin(space, buyer)
    assert mode(buyer) == "checkout"
    assert mode(UserFactory()) == "sold_out"
    complete(hold)
    assert mode(buyer) == "holder"
    host_box = selectors.ticket_box(space=space, viewer=space.host)["ticket_box"]
    assert (host_box["mode"], host_box["sold"], host_box["capacity"]) == ("host", 1, 1)
    unticketed = scheduled_space(space.host)
    assert selectors.ticket_box(space=unticketed, viewer=space.host)["ticket_box"]["mode"] == "sell"
    assert selectors.ticket_box(space=unticketed, viewer=buyer)["ticket_box"]["mode"] == "none"


def test_a_host_who_may_not_sell_sees_what_is_missing_not_a_sell_button(client):
    from rooms import services as room_services

    host = eligible_host(date_of_birth=None, hosting_granted=True)
    space = scheduled_space(host)
    box = selectors.ticket_box(space=space, viewer=host)["ticket_box"]
    assert box["mode"] == "locked"
    assert [c.key for c in box["lacking"]] == ["age"]
    live = room_services.space_create(host=host, title="Live now", speak_policy="everyone")
    client.force_login(host)
    for url in (reverse("rooms:scheduled_space", args=[space.pk]), live.get_absolute_url()):
        html = client.get(url).content.decode()
        assert 'data-testid="sell-tickets"' not in html
        assert 'data-testid="tickets-locked"' in html
        assert "Add your date of birth to your profile" in html
    # Once the date of birth is on the profile, the card to sell appears.
    host.date_of_birth = date(1990, 1, 1)
    host.save(update_fields=["date_of_birth"])
    assert 'data-testid="sell-tickets"' in client.get(url).content.decode()


def test_buy_box_partial_renders_price_and_button(rf):
    from django.template.loader import render_to_string

    space = ticketed_space(price_cents=2500)
    request = rf.get("/")
    request.user = UserFactory()
    html = render_to_string(
        "ticketing/_buy_box.html", selectors.ticket_box(space=space, viewer=request.user), request=request
    )
    assert "$25.00" in html and 'data-testid="buy-ticket"' in html and "csrfmiddlewaretoken" in html
    empty = render_to_string("ticketing/_buy_box.html", {"ticket_box": {"mode": "none"}})
    assert empty.strip() == ""


def test_ticket_box_query_count(django_assert_max_num_queries):
    space = ticketed_space(capacity=100)
    for _ in range(20):
        buy(space)
    viewer = UserFactory()
    with django_assert_max_num_queries(6):
        selectors.ticket_box(space=space, viewer=viewer)


# --- earnings --------------------------------------------------------------------------


def test_earnings_per_space_and_total(client, django_assert_max_num_queries):
    host = eligible_host()
    a = ticketed_space(host=host, price_cents=1000, capacity=50, title="Alpha")
    b = ticketed_space(host=host, price_cents=2550, capacity=50, title="Beta")
    for _ in range(3):
        buy(a)
    refunded = buy(b)
    buy(b)
    services.ticket_refund(ticket=refunded, by=UserFactory(is_superuser=True))
    figures = selectors.host_earnings(host=host)
    rows = {r.title: r for r in figures["per_space"]}
    assert (rows["Alpha"].gross_cents, rows["Alpha"].commission_cents, rows["Alpha"].net_cents) == (
        3000,
        90,
        2910,
    )
    # Beta: two sales of $25.50 (77¢ commission each, 76.5 rounded up), one refunded in full.
    assert (rows["Beta"].gross_cents, rows["Beta"].refunds_cents) == (5100, 2550)
    assert (rows["Beta"].commission_cents, rows["Beta"].net_cents) == (77, 2473)
    totals = figures["totals"]
    assert totals["gross_cents"] - totals["refunds_cents"] == totals["commission_cents"] + totals["net_cents"]
    assert figures["lifetime_cents"] == 2910 + 2473
    assert figures["rate_bps"] == 300

    for i in range(30):  # more Spaces must not mean more queries
        s = ticketed_space(host=host, capacity=5, title=f"S{i}")
        buy(s)
    client.force_login(host)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("ticketing:earnings"))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('data-testid="earnings-row"') == 32
    assert 'data-testid="total-gross">$381.00<' in html  # 30 + 51 + 30 × 10


def test_earnings_page_shows_the_high_rate_after_the_threshold(client):
    host = eligible_host()
    space = ticketed_space(host=host, price_cents=99_900, capacity=5)
    ticket = buy(space)
    LedgerEntry.objects.filter(ticket=ticket).update(
        gross_cents=5_200_000, commission_cents=0, host_share_cents=5_200_000
    )
    client.force_login(host)
    html = client.get(reverse("ticketing:earnings")).content.decode()
    assert 'data-testid="keep-percent">80%' in html
    assert "$52,000.00" in html


# --- payout accounts (test mode) ---------------------------------------------------------


def test_local_onboarding_connects_a_payout_account_through_the_event_path(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("ticketing:payouts_connect"))
    account = PayoutAccount.objects.get(user=user)
    assert response["Location"] == reverse("ticketing:local_onboarding", args=[account.stripe_account_id])
    assert not account.ready
    client.post(response["Location"])
    account.refresh_from_db()
    assert account.ready and account.details_submitted
    # A second click re-uses the account.
    client.post(reverse("ticketing:payouts_connect"))
    assert PayoutAccount.objects.filter(user=user).count() == 1


def test_seller_page_lists_the_hosts_spaces_with_ticket_links(client, django_assert_max_num_queries):
    host = eligible_host()
    ticketed = ticketed_space(host=host, price_cents=700, title="Already selling")
    for i in range(12):
        scheduled_space(host, in_hours=i + 1, title=f"Upcoming {i}")
    client.force_login(host)
    with django_assert_max_num_queries(10):
        html = client.get(reverse("ticketing:seller")).content.decode()
    assert html.count('data-testid="set-up-tickets"') == 12
    assert "Already selling" in html and "ticketed, $7.00" in html
    assert reverse("ticketing:settings", args=[ticketed.pk]) in html


def test_the_sweep_is_a_celery_task_on_the_beat_schedule(settings):
    from spaces_project.celery import app
    from ticketing import tasks

    assert (
        settings.CELERY_BEAT_SCHEDULE["ticketing-sweep"]["task"]
        == tasks.sweep.name
        == "ticketing.tasks.sweep"
    )
    assert "ticketing.tasks.refund_space" in app.tasks
    assert tasks.sweep.run() == {"spaces_refunded": 0, "holds_expired": 0, "refunds_done": 0}


# --- no Stripe key in production: sales off, never a free checkout ---------------------------


@override_settings(STRIPE_SECRET_KEY="", STRIPE_TEST_MODE=False)
def test_without_a_key_or_test_mode_nobody_can_buy_or_onboard_and_hosts_are_told(client):
    with override_settings(STRIPE_TEST_MODE=True):
        space = ticketed_space(capacity=5)
        stale = begin(space, UserFactory())
    buyer = UserFactory()
    client.force_login(buyer)
    page = client.post(reverse("ticketing:buy", args=[space.pk]), follow=True).content.decode()
    assert "be bought on this server right now" in page
    assert not Hold.objects.filter(buyer=buyer).exists()
    # A checkout opened while test mode was on can't be "paid" on our stand-in page any more.
    client.force_login(stale.buyer)
    assert client.post(stale.checkout_url, {"outcome": "succeed"}).status_code == 404
    assert not Ticket.objects.exists()

    host = space.host
    client.force_login(host)
    seller = client.get(reverse("ticketing:seller")).content.decode()
    assert 'data-testid="sales-off"' in seller and "STRIPE_SECRET_KEY" in seller
    assert 'data-testid="connect-payouts"' not in seller
    settings_page = client.get(reverse("ticketing:settings", args=[space.pk])).content.decode()
    assert 'data-testid="sales-off"' in settings_page and 'data-testid="save-tickets"' not in settings_page
    other = scheduled_space(host, in_hours=3)
    with pytest.raises(PermissionDenied, match="Ticket sales are off"):
        services.ticket_settings_save(space=other, by=host, price_cents=500, capacity=10, sales_close_at=None)


@override_settings(STRIPE_SECRET_KEY="", STRIPE_TEST_MODE=False)
def test_without_a_key_or_test_mode_a_new_host_gets_no_payout_account(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("ticketing:payouts_connect"), follow=True)
    assert not PayoutAccount.objects.filter(user=user).exists()
    assert "Ticket sales are off" in response.content.decode()


@override_settings(STRIPE_SECRET_KEY="", STRIPE_TEST_MODE=True)
def test_explicit_test_mode_keeps_the_simulated_checkout():
    space = ticketed_space(capacity=1)
    hold = begin(space, UserFactory())
    assert hold.checkout_url.startswith("/tickets/test-checkout/")
