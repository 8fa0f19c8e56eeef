"""Reminders, the one-click email links, and the outbox: claimed once, sent once, never lost."""

from __future__ import annotations

import re
import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from notifications import outbox, services
from notifications import rules as notification_rules
from notifications.models import Delivery, EmailPreference, Notification
from rooms import reminders, scheduling
from rooms.models import Reminder, Space
from tests.factories import UserFactory
from tests.test_scheduling import schedule

pytestmark = pytest.mark.django_db


def due_now(space):
    """Pretend the reminded people's start time has come (the outbox only sends what is due)."""
    Delivery.objects.filter(
        space_id=space.pk, kind__in=[reminders.SPACE_STARTING, reminders.SPACE_LIVE]
    ).update(due_at=timezone.now() - timedelta(seconds=1))


def drain() -> dict[str, int]:
    """What beat + a worker do: sweep, then run every batch."""
    totals: dict[str, int] = {}
    for ids in outbox.outbox_sweep():
        for outcome, n in outbox.send_batch(ids=ids).items():
            totals[outcome] = totals.get(outcome, 0) + n
    return totals


# --- setting and removing ---------------------------------------------------------


def test_setting_a_reminder_twice_keeps_one_reminder_and_one_message():
    space = schedule()
    person = UserFactory()
    assert reminders.reminder_set(user=person, space=space) is True
    assert reminders.reminder_set(user=person, space=space) is False
    assert Reminder.objects.filter(user=person, space=space).count() == 1
    assert Delivery.objects.filter(recipient=person, kind=reminders.SPACE_STARTING).count() == 1
    due_now(space)
    drain()
    assert [m.to for m in mail.outbox if m.to == [person.email]] == [[person.email]]


def test_host_cannot_remind_themselves():
    space = schedule()
    with pytest.raises(ValidationError, match="You're the host"):
        reminders.reminder_set(user=space.host, space=space)


def test_no_reminders_on_a_cancelled_space():
    space = schedule()
    scheduling.space_cancel(space=space, by=space.host)
    space.refresh_from_db()
    with pytest.raises(ValidationError, match="isn't scheduled"):
        reminders.reminder_set(user=UserFactory(), space=space)


def test_removing_a_reminder_withdraws_what_was_pending():
    space = schedule()
    person = UserFactory()
    reminders.reminder_set(user=person, space=space)
    assert reminders.reminder_remove(user=person, space=space) is True
    assert reminders.reminder_remove(user=person, space=space) is False
    assert not Delivery.objects.filter(recipient=person, status=Delivery.Status.PENDING).exists()
    due_now(space)
    drain()
    assert person.email not in [m.to[0] for m in mail.outbox]


def test_setting_a_reminder_again_after_removing_it_owes_the_reminder_again():
    space = schedule()
    person = UserFactory()
    reminders.reminder_set(user=person, space=space)
    reminders.reminder_remove(user=person, space=space)
    reminders.reminder_set(user=person, space=space)
    assert Delivery.objects.get(recipient=person).status == Delivery.Status.PENDING


# --- what people receive ------------------------------------------------------------


def test_reminded_people_get_the_start_time_notice_by_email_and_in_app():
    space = schedule(title="Late jazz")
    person = UserFactory()
    reminders.reminder_set(user=person, space=space)
    due_now(space)
    assert drain() == {"sent": 1}
    message = next(m for m in mail.outbox if m.to == [person.email])
    assert message.subject == "Starting now: Late jazz"
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html"
    assert "Remove this reminder" in message.body and "Remove this reminder" in html
    assert "Stop these emails" in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    note = Notification.objects.get(user=person)
    assert (note.title, note.url, note.read_at) == (
        "Starting now: Late jazz",
        f"http://127.0.0.1:8000{space.get_absolute_url()}",
        None,
    )


def test_host_hears_thirty_minutes_before_and_at_the_start_time():
    space = schedule(hours=2, title="Ask me anything")
    heads_up = Delivery.objects.get(kind=reminders.HOST_HEADS_UP)
    Delivery.objects.filter(pk=heads_up.pk).update(due_at=timezone.now())
    drain()
    assert [m.subject for m in mail.outbox] == ["In 30 minutes: Ask me anything"]
    assert mail.outbox[0].to == [space.host.email]
    Delivery.objects.filter(kind=reminders.HOST_START_TIME).update(due_at=timezone.now())
    drain()
    assert [m.subject for m in mail.outbox][1:] == ["It's time: Ask me anything"]


def test_going_live_tells_the_reminded_once_and_cancels_the_start_time_notice():
    space = schedule(title="Launch")
    people = [UserFactory() for _ in range(3)]
    for person in people:
        reminders.reminder_set(user=person, space=space)
    Space.objects.filter(pk=space.pk).update(state=Space.State.LIVE, started_at=timezone.now())
    space.refresh_from_db()
    reminders.space_live_notify(space=space)
    reminders.space_live_notify(space=space)  # a retried start: still one each
    due_now(space)
    drain()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in people)
    assert {m.subject for m in mail.outbox} == {f"{space.host.name} is live: Launch"}
    assert "Join now" in mail.outbox[0].alternatives[0][0]


@pytest.mark.parametrize(
    "meanwhile",
    [
        lambda space: Space.objects.filter(pk=space.pk).update(
            state=Space.State.LIVE, started_at=timezone.now()
        ),
        # An admin removed it; the outbox row names its id only.
        lambda space: Space.objects.filter(pk=space.pk).delete(),
    ],
    ids=["started", "deleted"],
)
def test_a_start_time_notice_for_a_space_started_or_deleted_after_the_sweep_is_cancelled(meanwhile):
    space = schedule()
    person = UserFactory()
    reminders.reminder_set(user=person, space=space)
    due_now(space)
    batches = outbox.outbox_sweep()
    meanwhile(space)
    for ids in batches:
        outbox.send_batch(ids=ids)
    assert mail.outbox == []
    assert Delivery.objects.get(recipient=person).status == Delivery.Status.CANCELLED
    assert not Notification.objects.filter(user=person).exists()


def test_person_without_email_gets_the_in_app_notification_only():
    space = schedule()
    person = UserFactory(email="")
    reminders.reminder_set(user=person, space=space)
    due_now(space)
    drain()
    assert Notification.objects.filter(user=person).count() == 1
    assert all(m.to != [""] for m in mail.outbox)


# --- the signed links ---------------------------------------------------------------


def link_from(message, label: str) -> str:
    match = re.search(rf"{label}: (\S+)", message.body)
    assert match, message.body
    return match.group(1).replace("http://127.0.0.1:8000", "")


def sent_reminder(space, person):
    reminders.reminder_set(user=person, space=space)
    due_now(space)
    drain()
    return next(m for m in mail.outbox if m.to == [person.email])


def test_remove_link_in_the_email_removes_the_reminder_without_signing_in(client):
    space = schedule(title="Morning show")
    person = UserFactory()
    message = sent_reminder(space, person)
    # Reset the space's schedule so there is something left to remove.
    Delivery.objects.all().delete()
    Notification.objects.all().delete()
    reminders.reminder_remove(user=person, space=space)
    reminders.reminder_set(user=person, space=space)

    # Opening the link (as a mail scanner would) only asks; the page's button removes it.
    asked = client.get(link_from(message, "Remove this reminder"))
    assert asked.status_code == 200 and 'data-testid="confirm"' in asked.content.decode()
    assert Reminder.objects.filter(user=person).exists()
    response = client.post(link_from(message, "Remove this reminder"))
    assert response.status_code == 200
    assert "Reminder removed" in response.content.decode()
    assert not Reminder.objects.filter(user=person).exists()
    assert not Delivery.objects.filter(recipient=person, status=Delivery.Status.PENDING).exists()
    # Clicking again is harmless.
    again = client.post(link_from(message, "Remove this reminder"))
    assert again.status_code == 200 and "nothing changed" in again.content.decode()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t[: len(t) // 2],  # cut short
        lambda t: signing.dumps({"u": 1, "a": "unremind", "s": 1}, salt="another-salt", compress=True),
        lambda t: "not-a-token",
    ],
    ids=["signature", "truncated", "wrong-salt", "garbage"],
)
def test_a_tampered_link_is_refused_and_changes_nothing(client, tamper):
    space = schedule()
    person = UserFactory()
    message = sent_reminder(space, person)
    path = link_from(message, "Remove this reminder")
    token = path.rstrip("/").rsplit("/", 1)[1]
    response = client.get(reverse("notifications:email_link", args=[tamper(token)]))
    assert response.status_code == 400
    page = response.content.decode()
    assert "This link doesn't work" in page and "Nothing was changed" in page
    assert Reminder.objects.filter(user=person, space=space).exists()


def test_a_link_signed_for_someone_else_cannot_be_rewritten_to_another_person(client):
    space = schedule()
    victim, attacker = UserFactory(), UserFactory()
    reminders.reminder_set(user=victim, space=space)
    token = services.email_link_token(user_id=attacker.pk, action=reminders.UNREMIND, space_id=space.pk)
    payload, rest = token.split(":", 1)
    forged = payload.replace(payload, payload[::-1]) + ":" + rest
    assert client.get(reverse("notifications:email_link", args=[forged])).status_code == 400
    assert Reminder.objects.filter(user=victim).exists()


def test_an_expired_link_is_refused(client, settings):
    space = schedule()
    person = UserFactory()
    reminders.reminder_set(user=person, space=space)
    token = services.email_link_token(user_id=person.pk, action=reminders.UNREMIND, space_id=space.pk)
    later = timezone.now() + timedelta(days=notification_rules.LINK_MAX_AGE_DAYS + 1)
    with mock.patch("time.time", return_value=later.timestamp()):
        response = client.get(reverse("notifications:email_link", args=[token]))
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert Reminder.objects.filter(user=person).exists()


def test_stop_link_turns_emails_off_but_keeps_the_in_app_list(client):
    space = schedule()
    person = UserFactory()
    message = sent_reminder(space, person)
    asked = client.get(link_from(message, "Stop these emails")).content.decode()
    assert "Stop notification emails?" in asked
    assert not EmailPreference.objects.filter(user=person, email_opt_out=True).exists()
    response = client.post(link_from(message, "Stop these emails"))
    assert "Emails stopped" in response.content.decode()
    assert EmailPreference.objects.get(user=person).email_opt_out is True

    other = schedule(title="Second show")
    reminders.reminder_set(user=person, space=other)
    mail.outbox.clear()
    due_now(other)
    drain()
    assert person.email not in [m.to[0] for m in mail.outbox]
    assert Notification.objects.filter(user=person, title="Starting now: Second show").exists()


def test_stop_link_can_be_undone_from_its_page(client):
    person = UserFactory()
    token = services.email_link_token(user_id=person.pk, action=services.STOP_EMAILS)
    page = client.post(reverse("notifications:email_link", args=[token])).content.decode()
    undo = re.search(r'name="undo" value="([^"]+)"', page).group(1)
    response = client.post(reverse("notifications:email_link", args=[token]), {"undo": undo})
    assert "Emails are back on" in response.content.decode()
    assert EmailPreference.objects.get(user=person).email_opt_out is False


def test_one_click_unsubscribe_post_from_a_mail_client_works_without_csrf():
    from django.test import Client

    person = UserFactory()
    token = services.email_link_token(user_id=person.pk, action=services.STOP_EMAILS)
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("notifications:email_link", args=[token]), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert EmailPreference.objects.get(user=person).email_opt_out is True


# --- the outbox: claims ----------------------------------------------------------------


def one_due_delivery(**kwargs) -> Delivery:
    return services.notify(user=UserFactory(), kind="test", title="Hello", body="Body", **kwargs)


def test_sweep_takes_only_what_is_due():
    due = one_due_delivery()
    later = one_due_delivery(due_at=timezone.now() + timedelta(hours=1))
    assert outbox.outbox_sweep() == [[due.pk]]
    # Enqueued rows are not enqueued again by the next sweep...
    assert outbox.outbox_sweep() == []
    assert Delivery.objects.get(pk=later.pk).enqueued_at is None


def test_sweep_enqueues_in_batches(settings):
    settings.NOTIFICATIONS_BATCH_SIZE = 4
    services.notify_many(users=[UserFactory() for _ in range(10)], kind="test", title="Hi")
    assert [len(b) for b in outbox.outbox_sweep()] == [4, 4, 2]


def test_a_row_is_claimed_by_exactly_one_worker():
    delivery = one_due_delivery()
    first = outbox.delivery_claim(pk=delivery.pk)
    second = outbox.delivery_claim(pk=delivery.pk)
    assert first is not None and second is None
    assert first.attempts == 1 and first.status == Delivery.Status.CLAIMED


def test_running_the_same_batch_twice_sends_once():
    delivery = one_due_delivery()
    (batch,) = outbox.outbox_sweep()
    assert outbox.send_batch(ids=batch) == {"sent": 1}
    assert outbox.send_batch(ids=batch) == {"skipped": 1}
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(delivery=delivery).count() == 1


def test_a_row_claimed_by_a_worker_that_died_is_sent_once_after_the_timeout(settings):
    delivery = one_due_delivery()
    outbox.outbox_sweep()
    assert outbox.delivery_claim(pk=delivery.pk)  # ...and the worker is killed here
    assert outbox.outbox_sweep() == []  # not yet: it may still be working
    assert drain() == {}
    later = timezone.now() + timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT + 1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert outbox.outbox_sweep() == [[delivery.pk]]
        assert outbox.send_batch(ids=[delivery.pk]) == {"sent": 1}
        assert outbox.send_batch(ids=[delivery.pk]) == {"skipped": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)
    assert len(mail.outbox) == 1


def test_a_slow_worker_whose_claim_was_taken_over_does_not_record_a_second_send(settings):
    delivery = one_due_delivery()
    slow = outbox.delivery_claim(pk=delivery.pk)
    later = timezone.now() + timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT + 1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert outbox.send_batch(ids=[delivery.pk]) == {"sent": 1}
    assert outbox._finish(slow, status=Delivery.Status.SENT) == 0
    assert Notification.objects.filter(delivery=delivery).count() == 1


def test_a_failed_send_is_retried_later_and_given_up_after_the_last_attempt(monkeypatch):
    monkeypatch.setattr("notifications.rules.MAX_ATTEMPTS", 2)
    delivery = one_due_delivery()
    with mock.patch(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        side_effect=smtplib.SMTPServerDisconnected("gone"),
    ):
        assert drain() == {"retry": 1}
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.PENDING and delivery.due_at > timezone.now()
        assert "gone" in delivery.last_error
        Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now())
        assert drain() == {"retry": 1}
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    # The in-app notice never depended on the email: written once, kept.
    assert Notification.objects.filter(delivery=delivery).count() == 1


def test_nothing_is_queued_when_the_callers_transaction_rolls_back():
    from django.db import transaction

    person = UserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.notify(user=person, kind="test", title="Never")
        raise RuntimeError
    assert not Delivery.objects.exists()


def test_message_id_is_the_same_on_every_attempt():
    delivery = one_due_delivery()
    first = outbox.build_email(delivery).message()["Message-ID"]
    second = outbox.build_email(Delivery.objects.get(pk=delivery.pk)).message()["Message-ID"]
    assert first == second == f"<delivery-{delivery.pk}@127.0.0.1>"
