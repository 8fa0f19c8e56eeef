"""The public notify API, the in-app list with its unread badge, and the live push over /ws/notifications/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from notifications import outbox, services
from notifications.models import Delivery, Notification
from spaces_project.asgi import application
from tests.factories import UserFactory
from tests.test_reminders import drain

# --- notify / notify_many ---------------------------------------------------------


@pytest.mark.django_db
def test_notify_queues_a_message_that_the_sweep_sends():
    person = UserFactory()
    delivery = services.notify(
        user=person,
        kind="ticket_refund",
        title="Refunded: $5.00",
        body="Your ticket was refunded.",
        url="/t/1/",
    )
    assert delivery.status == Delivery.Status.PENDING and mail.outbox == []
    drain()
    assert [m.subject for m in mail.outbox] == ["Refunded: $5.00"]
    note = Notification.objects.get(user=person)
    assert (note.kind, note.body) == ("ticket_refund", "Your ticket was refunded.")
    # Not a reminder, so no "remove reminder" link; always a way to stop emails.
    assert "Remove this reminder" not in mail.outbox[0].body and "Stop these emails" in mail.outbox[0].body


@pytest.mark.django_db
def test_notify_with_the_same_dedupe_key_sends_once():
    person = UserFactory()
    first = services.notify(user=person, kind="report_outcome", title="Report closed", dedupe_key="report:7")
    second = services.notify(user=person, kind="report_outcome", title="Report closed", dedupe_key="report:7")
    assert first.pk == second.pk
    drain()
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_notify_in_app_only_sends_no_email():
    person = UserFactory()
    services.notify(user=person, kind="test", title="Quiet", send_email=False)
    drain()
    assert mail.outbox == [] and Notification.objects.filter(user=person, title="Quiet").exists()


@pytest.mark.django_db
def test_notify_later_waits_until_due():
    person = UserFactory()
    services.notify(user=person, kind="test", title="Later", due_at=timezone.now() + timedelta(minutes=5))
    drain()
    assert mail.outbox == []


@pytest.mark.django_db
def test_notify_many_queues_one_per_person_and_dedupes_per_person(django_assert_max_num_queries):
    people = [UserFactory() for _ in range(50)]
    with django_assert_max_num_queries(6):
        assert (
            services.notify_many(users=people, kind="ticket_refund", title="Refunded", dedupe_key="refund:9")
            == 50
        )
    assert (
        services.notify_many(users=people[:10] + [people[0].pk], kind="x", title="y", dedupe_key="refund:9")
        == 10
    )
    assert Delivery.objects.count() == 50


# --- the list page and the badge ---------------------------------------------------------


def notes_for(person, n: int):
    Notification.objects.bulk_create(
        [Notification(user=person, kind="test", title=f"Note {i}", url="/") for i in range(n)]
    )


@pytest.mark.django_db
def test_unread_badge_counts_and_the_list_page_clears_it(client):
    person = UserFactory()
    notes_for(person, 3)
    notes_for(UserFactory(), 2)  # someone else's
    bell = Template("{% load notifications %}{% notifications_unread %}")
    html = bell.render(Context({"user": person}))
    assert "data-notifications-unread>3<" in html and "/ws/" not in html and "notifications.js" in html
    client.force_login(person)
    # Through the request cycle the page shows the count ...
    assert "data-notifications-unread>3<" in client.get(reverse("home")).content.decode()
    page = client.get(reverse("notifications:inbox")).content.decode()
    assert page.count('class="note unread"') == 3
    assert "Note 2" in page
    # ... and the list page, which marks them read, shows its own bell cleared, not that count.
    assert "data-notifications-unread hidden>0<" in page
    assert "data-notifications-unread hidden>0<" in bell.render(Context({"user": person}))
    assert client.get(reverse("notifications:inbox")).content.decode().count('class="note unread"') == 0


@pytest.mark.django_db
def test_bell_is_empty_for_anonymous_visitors():
    from django.contrib.auth.models import AnonymousUser

    html = Template("{% load notifications %}{% notifications_unread %}").render(
        Context({"user": AnonymousUser()})
    )
    assert html.strip() == ""


@pytest.mark.django_db
def test_list_page_query_count_does_not_grow_with_the_list(client, django_assert_max_num_queries):
    person = UserFactory()
    notes_for(person, 60)
    client.force_login(person)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("notifications:inbox"))
    assert response.status_code == 200
    assert response.content.decode().count('<li class="note') == 30


@pytest.mark.django_db
def test_email_toggle_on_the_list_page(client):
    person = UserFactory()
    client.force_login(person)
    client.post(reverse("notifications:email_preference"), {"emails": "off"})
    assert services.email_opted_out(user=person)
    assert 'data-testid="emails-on"' in client.get(reverse("notifications:inbox")).content.decode()
    client.post(reverse("notifications:email_preference"), {"emails": "on"})
    assert not services.email_opted_out(user=person)


@pytest.mark.django_db
def test_list_page_needs_sign_in(client):
    assert client.get(reverse("notifications:inbox")).status_code == 302


# --- the websocket ----------------------------------------------------------------------


async def connect(user):
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")],
    )
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
async def test_socket_refuses_anonymous_visitors():
    communicator = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    connected, code = await communicator.connect()
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_socket_sends_the_unread_count_then_each_new_notification_live():
    person = await sync_to_async(UserFactory)()
    await sync_to_async(notes_for)(person, 2)
    communicator, connected, _ = await connect(person)
    assert connected
    assert await communicator.receive_json_from(timeout=5) == {"type": "unread", "count": 2}

    await sync_to_async(services.notify)(
        user=person, kind="space_live", title="Ana is live: Jazz", url="/spaces/1/"
    )
    await sync_to_async(drain)()
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "notification"
    assert (message["title"], message["url"], message["unread"]) == ("Ana is live: Jazz", "/spaces/1/", 3)
    await communicator.send_json_to({"type": "sync"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "unread", "count": 3}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_socket_only_hears_its_own_persons_notifications():
    person, other = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    communicator, _, _ = await connect(person)
    await communicator.receive_json_from(timeout=5)
    await sync_to_async(services.notify)(user=other, kind="test", title="Not yours")
    await sync_to_async(drain)()
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
async def test_socket_finds_notifications_written_by_another_process(monkeypatch):
    """Embedded default: workers can't reach this process's in-memory layer, so the consumer polls."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from notifications import consumers

    assert isinstance(get_channel_layer(), InMemoryChannelLayer)
    monkeypatch.setattr(consumers, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(outbox, "push", lambda **kwargs: None)  # as if sent from another process
    person = await sync_to_async(UserFactory)()
    communicator, _, _ = await connect(person)
    await communicator.receive_json_from(timeout=5)
    await sync_to_async(services.notify)(user=person, kind="test", title="From a worker")
    await sync_to_async(drain)()
    message = await communicator.receive_json_from(timeout=5)
    assert (message["title"], message["unread"]) == ("From a worker", 1)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_push_goes_only_to_people_marked_online_and_carries_their_unread_count():
    """A go-live chunk is hundreds of people, most of them away: only those whose bell marked
    them online get an event, and it carries the count so a thousand bells don't count again."""
    import asyncio

    from channels.layers import get_channel_layer
    from django.core.cache import cache

    from notifications.groups import user_group
    from notifications.selectors import online_key

    layer = get_channel_layer()
    looking, away = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    await sync_to_async(notes_for)(looking, 2)
    heard = {}
    for person in (looking, away):
        heard[person.pk] = await layer.new_channel()
        await layer.group_add(user_group(person.pk), heard[person.pk])
    await cache.adelete(online_key(away.pk))
    await cache.aset(online_key(looking.pk), 1, 30)

    for person in (looking, away):
        await sync_to_async(services.notify)(user=person, kind="test", title="Ana is live")
    await sync_to_async(drain)()

    event = await asyncio.wait_for(layer.receive(heard[looking.pk]), timeout=5)
    assert (event["notification"]["title"], event["unread"]) == ("Ana is live", 3)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(heard[away.pk]), timeout=0.5)
    # The notice itself is written either way: the list page and the next connect show it.
    assert await Notification.objects.filter(user=away).acount() == 1
