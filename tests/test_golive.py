"""Go-live notices: every follower hears when a host starts, in chunks through the outbox, once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Follow
from accounts.services import follow_create
from notifications import services as notifications
from notifications.models import Delivery, Notification
from rooms import golive, reminders, services
from rooms import rules as room_rules
from rooms.models import Space
from tests.factories import UserFactory
from tests.test_reminders import drain
from tests.test_reminders_celery import Sink
from tests.test_scheduling import make_host, schedule

pytestmark = pytest.mark.django_db


def host_with_followers(n: int, *, name: str = "Ana", email_on_live: set[int] = frozenset()):
    host = make_host(display_name=name)
    followers = UserFactory.create_batch(n)
    for i, person in enumerate(followers):
        follow_create(follower=person, followee=host)
        if i in email_on_live:
            Follow.objects.filter(follower=person, followee=host).update(email_on_live=True)
    return host, followers


def fan_out(space: Space) -> list[dict[str, int]]:
    """What the Celery worker does for `golive_fanout`: every chunk task, in order."""
    return [
        golive.golive_send(space_id=space.pk, follower_ids=ids)
        for ids in golive.golive_chunks(space_id=space.pk)
    ]


def test_every_follower_gets_one_in_app_notice_with_a_link_to_join(monkeypatch):
    monkeypatch.setattr(room_rules, "GOLIVE_CHUNK", 2)
    host, followers = host_with_followers(5)
    stranger = UserFactory()
    space = services.space_create(host=host, title="Morning jazz")

    chunks = golive.golive_chunks(space_id=space.pk)
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert sorted(pk for c in chunks for pk in c) == sorted(p.pk for p in followers)
    assert fan_out(space) == [{"sent": 2}, {"sent": 2}, {"sent": 1}]

    notes = Notification.objects.filter(kind=golive.FOLLOWED_LIVE)
    assert sorted(notes.values_list("user_id", flat=True)) == sorted(p.pk for p in followers)
    assert set(notes.values_list("title", "url")) == {
        ("Ana is live: Morning jazz", f"http://127.0.0.1:8000{space.get_absolute_url()}")
    }
    assert not Notification.objects.filter(user=stranger).exists()
    assert not Notification.objects.filter(user=host).exists()
    assert mail.outbox == []  # nobody asked for email
    # Running the chunks again (a redelivered task) writes and sends nothing more: every row
    # exists already and is left to whoever wrote it.
    assert fan_out(space) == [{"skipped": 2}, {"skipped": 2}, {"skipped": 1}]
    assert notes.count() == 5


def test_a_chunk_costs_the_same_few_queries_however_many_followers_it_holds():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reads_and_updates, inserts = [], []
    for n in (3, 120):
        host, followers = host_with_followers(n)
        space = services.space_create(host=host, title="Crowd")
        with CaptureQueriesContext(connection) as queries:
            assert golive.golive_send(space_id=space.pk, follower_ids=[p.pk for p in followers]) == {
                "sent": n
            }
        sql = [q["sql"] for q in queries.captured_queries]
        inserts.append(sum(1 for q in sql if q.startswith("INSERT")))
        reads_and_updates.append(len(sql) - inserts[-1])
    assert reads_and_updates[0] == reads_and_updates[1] <= 15
    # Bulk inserts: one statement each on PostgreSQL; SQLite's backend splits them by its
    # parameter limit (about 70 rows a statement), still nowhere near one per follower.
    assert inserts[1] <= 6
    assert Notification.objects.filter(kind=golive.FOLLOWED_LIVE).count() == 123


def test_people_with_a_page_open_are_told_first(monkeypatch):
    from django.core.cache import cache

    from notifications.selectors import online_key

    monkeypatch.setattr(room_rules, "GOLIVE_CHUNK", 2)
    host, followers = host_with_followers(5)
    cache.set(online_key(followers[4].pk), 1, 30)
    space = services.space_create(host=host, title="Now")
    assert golive.golive_chunks(space_id=space.pk)[0][0] == followers[4].pk


def test_a_chunk_whose_worker_died_after_writing_is_sent_once_by_the_sweep(monkeypatch):
    """The rows go in claimed by the chunk's task; if it dies before sending them, a redelivered
    chunk leaves them alone and the sweep takes them over once the claim has gone stale."""
    from notifications import outbox

    host, followers = host_with_followers(3)
    space = services.space_create(host=host, title="Crash")
    ids = [p.pk for p in followers]

    def die(rows, counts):
        raise SystemExit("worker killed")

    monkeypatch.setattr(outbox, "_send_claimed", die)
    with pytest.raises(SystemExit):
        golive.golive_send(space_id=space.pk, follower_ids=ids)
    monkeypatch.undo()
    rows = Delivery.objects.filter(kind=golive.FOLLOWED_LIVE)
    assert set(rows.values_list("status", flat=True)) == {Delivery.Status.CLAIMED}
    assert not Notification.objects.exists()

    # The redelivered chunk finds the rows held and sends nothing.
    assert golive.golive_send(space_id=space.pk, follower_ids=ids) == {"skipped": 3}
    assert not Notification.objects.exists()

    # Within the claim timeout the sweep leaves them too; after it, they are sent exactly once.
    assert outbox.outbox_sweep() == []
    rows.update(claimed_at=timezone.now() - timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT + 1))
    batches = outbox.outbox_sweep()
    assert sorted(pk for ids in batches for pk in ids) == sorted(rows.values_list("pk", flat=True))
    results = [outbox.send_batch(ids=ids) for ids in batches]
    assert sum(r.get("sent", 0) for r in results) == 3
    assert sorted(Notification.objects.values_list("user_id", flat=True)) == sorted(ids)
    assert set(rows.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_a_space_that_already_ended_is_not_announced():
    host, followers = host_with_followers(3)
    space = services.space_create(host=host, title="Quick test")
    chunks = golive.golive_chunks(space_id=space.pk)
    services.space_end(space=space, by=host)
    # The chunk tasks run after the host ended it: nothing is written or sent.
    assert [golive.golive_send(space_id=space.pk, follower_ids=ids) for ids in chunks] == [{"not_live": 3}]
    assert golive.golive_chunks(space_id=space.pk) == []
    assert not Delivery.objects.filter(kind=golive.FOLLOWED_LIVE).exists()
    assert not Notification.objects.exists()


def test_rows_written_before_the_end_are_cancelled_at_send_time():
    """A chunk task that was lost leaves pending rows; the sweep takes them over after the Space ended."""
    host, followers = host_with_followers(2)
    space = services.space_create(host=host, title="Short")
    notifications.deliveries_plan(
        rows=[
            notifications.delivery_row(
                recipient_id=p.pk,
                space_id=space.pk,
                kind=golive.FOLLOWED_LIVE,
                title="Ana is live: Short",
                dedupe_key=golive.dedupe_key(space.pk, p.pk),
                due_at=timezone.now(),
            )
            for p in followers
        ]
    )
    services.space_end(space=space, by=host)
    assert drain() == {"cancelled": 2}
    assert not Notification.objects.exists()


def test_a_follower_who_also_set_a_reminder_is_told_once():
    host, (reminded, plain) = host_with_followers(2)
    space = schedule(host, title="Launch")
    reminders.reminder_set(user=reminded, space=space)
    services.space_start(space=space, by=host)
    fan_out(space)
    drain()
    assert Notification.objects.filter(user=reminded).count() == 1
    assert (
        Notification.objects.get(user=reminded).kind == reminders.SPACE_LIVE
    )  # the reminder's, with its email
    assert Notification.objects.filter(user=plain).count() == 1
    assert Notification.objects.get(user=plain).kind == golive.FOLLOWED_LIVE


def test_unfollowing_before_the_chunk_runs_means_no_notice():
    host, (stays, leaves) = host_with_followers(2)
    space = services.space_create(host=host, title="Live")
    chunks = golive.golive_chunks(space_id=space.pk)
    Follow.objects.filter(follower=leaves).delete()
    for ids in chunks:
        golive.golive_send(space_id=space.pk, follower_ids=ids)
    assert list(Notification.objects.values_list("user_id", flat=True)) == [stays.pk]


# --- email for those who asked, through a real SMTP server ---------------------------------------


@pytest.fixture
def smtp(settings):
    with Sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
        sink.messages = []
        yield sink


def test_only_followers_who_opted_in_for_this_host_get_an_email_with_a_working_stop_link(smtp, client):
    import email
    import threading

    raw: list[bytes] = []
    lock = threading.Lock()
    original = smtp.handle_DATA

    async def keep(server, session, envelope):
        with lock:
            raw.append(envelope.content)
        return await original(server, session, envelope)

    smtp.handle_DATA = keep
    host, (wants, doesnt) = host_with_followers(2, email_on_live={0})
    other_host = make_host(display_name="Bea")
    follow_create(follower=doesnt, followee=other_host)
    Follow.objects.filter(follower=doesnt, followee=other_host).update(email_on_live=True)  # another host
    space = services.space_create(host=host, title="Night radio")
    assert fan_out(space) == [{"sent": 2}]

    assert list(smtp.pairs()) == [(wants.email, "Ana is live: Night radio")]
    message = email.message_from_bytes(raw[0])
    text = (
        next(p for p in message.walk() if p.get_content_type() == "text/plain")
        .get_payload(decode=True)
        .decode()
    )
    assert "Stop emails when Ana goes live" in text
    link = re.search(r"Stop emails when Ana goes live[^\n]*\n?\s*(\S*/notifications/email/\S+)", text)
    assert link, text
    path = link.group(1).replace("http://127.0.0.1:8000", "")

    asked = client.get(path)  # a mail scanner opening the link changes nothing
    assert asked.status_code == 200 and "Stop emails when Ana goes live?" in asked.content.decode()
    assert Follow.objects.get(follower=wants, followee=host).email_on_live
    done = client.post(path)
    assert done.status_code == 200 and "Go-live emails stopped" in done.content.decode()
    follow = Follow.objects.get(follower=wants, followee=host)
    assert follow.email_on_live is False  # still following, no more emails
    again = client.post(path)
    assert "nothing changed" in again.content.decode()


def test_a_tampered_stop_link_changes_nothing(client):
    host, (wants,) = host_with_followers(1, email_on_live={0})
    space = services.space_create(host=host, title="Live")
    token = notifications.email_link_token(user_id=wants.pk, action=golive.LIVE_EMAIL_OFF, space_id=space.pk)
    response = client.post(reverse("notifications:email_link", args=[token[:-3] + "xyz"]))
    assert response.status_code == 400
    assert Follow.objects.get(follower=wants).email_on_live


# --- the profile's switch ------------------------------------------------------------------------


def test_a_follower_turns_go_live_emails_on_and_off_from_the_profile(client):
    host = make_host(display_name="Ana", username="ana")
    person = UserFactory()
    follow_create(follower=person, followee=host)
    client.force_login(person)
    page = client.get(host.get_absolute_url()).content.decode()
    assert "Notify me by email when Ana goes live" in page and 'aria-checked="false"' in page

    swapped = client.post(reverse("live_email", args=["ana"]), {"on": "1"}, HTTP_HX_REQUEST="true")
    assert 'aria-checked="true"' in swapped.content.decode()
    assert Follow.objects.get(follower=person).email_on_live
    client.post(reverse("live_email", args=["ana"]), {"on": "0"})
    assert not Follow.objects.get(follower=person).email_on_live


def test_the_switch_is_only_for_followers(client):
    host = make_host(display_name="Ana", username="ana")
    person = UserFactory()
    client.force_login(person)
    assert "Notify me by email" not in client.get(host.get_absolute_url()).content.decode()
    response = client.post(reverse("live_email", args=["ana"]), {"on": "1"}, follow=True)
    assert "Follow Ana first" in response.content.decode()
    assert not Follow.objects.exists()


def test_the_switch_needs_sign_in_and_post(client):
    host = make_host(username="ana")
    assert client.post(reverse("live_email", args=["ana"]), {"on": "1"}).status_code == 302
    person = UserFactory()
    follow_create(follower=person, followee=host)
    client.force_login(person)
    assert client.get(reverse("live_email", args=["ana"])).status_code == 405
