"""Only ticket holders, the host, co-hosts and invited speakers get into a ticketed Space: the page,
the join service and the websocket (audio signalling and Janus admission sit behind the socket)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as db
from django.urls import reverse
from django.utils import timezone

from rooms import services as rooms_services
from rooms.access import entry_refusal
from rooms.models import Participant
from tests.factories import UserFactory
from tests.rooms_support import connect, join
from tests.test_ticketing_support import begin, checkout_event, eligible_host
from ticketing import services
from ticketing.models import Ticket

REFUSED = "ticketed Space. Buy a ticket"


def live_ticketed_space(*, price_cents: int = 800, capacity: int = 10):
    host = eligible_host(hosting_granted=True)
    space = rooms_services.space_create(host=host, title="Paid live talk")
    services.ticket_settings_save(
        space=space, by=host, price_cents=price_cents, capacity=capacity, sales_close_at=None
    )
    return space


def give_ticket(space, user) -> Ticket:
    hold = begin(space, user)
    services.stripe_event_handle(event=checkout_event(hold))
    return Ticket.objects.get(hold=hold)


@pytest.mark.django_db
def test_entry_refusal_for_a_ticketed_live_space():
    space = live_ticketed_space()
    stranger, holder, cohost, invited = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    give_ticket(space, holder)
    Participant.objects.create(space=space, user=cohost, role=Participant.Role.COHOST)
    Participant.objects.create(space=space, user=invited, invited_at=timezone.now())
    assert REFUSED in entry_refusal(space=space, user=stranger)
    for person in (space.host, holder, cohost, invited):
        assert entry_refusal(space=space, user=person) is None, person


@pytest.mark.django_db
def test_entry_to_a_paid_and_a_free_space_for_everyone(django_assert_max_num_queries):
    """Every way in or out of a paid and a free Space, in a few small queries that do not grow."""
    from moderation.models import HostBlock
    from rooms.models import Space

    paid, free = (
        live_ticketed_space(),
        rooms_services.space_create(host=eligible_host(hosting_granted=True), title="Free talk"),
    )
    holder, refunded, cohost, invited, removed, blocked, stranger = (UserFactory() for _ in range(7))
    give_ticket(paid, holder)
    services.ticket_refund(ticket=give_ticket(paid, refunded), by=UserFactory(is_superuser=True))
    Participant.objects.create(space=paid, user=cohost, role=Participant.Role.COHOST)
    Participant.objects.create(space=paid, user=invited, invited_at=timezone.now())
    for space in (paid, free):
        Participant.objects.create(space=space, user=removed, removed_at=timezone.now())
        HostBlock.objects.create(host=space.host, blocked=blocked)
    removed_, blocked_ = "You were removed", "The host has blocked you"
    expected = {
        paid: {paid.host: None, free.host: REFUSED, holder: None, refunded: REFUSED, cohost: None,
               invited: None, removed: removed_, blocked: blocked_, stranger: REFUSED},
        free: {paid.host: None, free.host: None, holder: None, refunded: None, cohost: None,
               invited: None, removed: removed_, blocked: blocked_, stranger: None},
    }  # fmt: skip
    for space, answers in expected.items():
        for person, answer in answers.items():
            plain = Space.objects.get(pk=space.pk)
            with django_assert_max_num_queries(5):  # removed, blocked, ticket settings, ticket, invited
                refusal = entry_refusal(space=plain, user=person)
            assert (refusal is None) if answer is None else (answer in refusal), (space.title, person)


@pytest.mark.django_db
def test_join_service_refuses_without_a_ticket_and_admits_after_buying():
    space = live_ticketed_space()
    listener = UserFactory()
    with pytest.raises(rooms_services.EntryRefused, match="Buy a ticket"):
        join(space, listener)
    give_ticket(space, listener)
    join(space, listener)
    assert Participant.objects.get(space=space, user=listener).role == Participant.Role.LISTENER


@pytest.mark.django_db
def test_space_page_shows_price_and_buy_button_to_people_without_a_ticket(client):
    space = live_ticketed_space(price_cents=1250)
    listener = UserFactory()
    client.force_login(listener)
    page = client.get(space.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 403
    assert REFUSED in html
    assert 'data-testid="ticket-price">$12.50<' in html
    assert 'data-testid="buy-ticket"' in html
    assert "space-config" not in html  # no socket, no audio configuration
    give_ticket(space, listener)
    page = client.get(space.get_absolute_url())
    assert page.status_code == 200
    assert 'data-testid="has-ticket"' in page.content.decode()


@pytest.mark.django_db
def test_host_sees_tickets_sold_on_the_space_page(client):
    space = live_ticketed_space(capacity=7)
    give_ticket(space, UserFactory())
    give_ticket(space, UserFactory())
    client.force_login(space.host)
    html = client.get(space.get_absolute_url()).content.decode()
    assert 'data-testid="tickets-sold">2<' in html and "of 7 sold" in html


@pytest.mark.django_db
def test_refunded_holder_is_refused_again(client):
    space = live_ticketed_space()
    ticket = give_ticket(space, UserFactory())
    services.ticket_refund(ticket=ticket, by=UserFactory(is_superuser=True))
    assert REFUSED in entry_refusal(space=space, user=ticket.holder)


@pytest.mark.django_db(transaction=True)
async def test_websocket_refuses_a_listener_without_a_ticket():
    space = await db(live_ticketed_space)()
    listener = await db(UserFactory)()
    peer = await connect(space, listener, expect_snapshot=False)
    assert peer.first["code"] == "entry_refused"
    assert "Buy a ticket" in peer.first["message"]
    await db(give_ticket)(space, listener)
    peer = await connect(space, listener)
    assert peer.snapshot is not None
    await peer.close()


@pytest.mark.django_db
def test_buying_from_the_space_page_form(client):
    space = live_ticketed_space()
    buyer = UserFactory()
    client.force_login(buyer)
    checkout = client.post(reverse("ticketing:buy", args=[space.pk]))["Location"]
    done = client.post(checkout, {"outcome": "succeed"}, follow=True)
    assert done.redirect_chain[-1][0] == space.get_absolute_url()
    assert done.status_code == 200
    assert "Your ticket is confirmed" in done.content.decode()
