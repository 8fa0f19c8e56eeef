"""Single-line fields refuse control characters; email subjects are safe whatever is stored; the
in-app notice never depends on email delivery."""

from __future__ import annotations

import socket

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services as account_services
from notifications import services
from notifications.models import Delivery, Notification
from rooms import services as room_services
from rooms.forms import SpaceForm
from rooms.models import Space
from tests.factories import UserFactory
from tests.test_reminders import drain

pytestmark = pytest.mark.django_db

BAD = ["Talk\r\nBcc: everyone@example.com", "Tab\tin it", "bell\x07", "nul\x00", "line\u2028sep"]


@pytest.mark.parametrize("title", [t for t in BAD if "\x00" not in t])  # Django's own check says NUL
def test_space_form_refuses_control_characters_in_the_title(title):
    form = SpaceForm({"title": title, "topics": "", "speak_policy": "everyone"})
    assert not form.is_valid()
    assert "one line" in str(form.errors["title"])


def test_space_form_refuses_control_characters_in_a_topic():
    form = SpaceForm({"title": "Fine", "topics": "music, bad\r\ntopic", "speak_policy": "everyone"})
    assert not form.is_valid() and "topics" in form.errors


@pytest.mark.parametrize("title", BAD)
def test_space_create_service_refuses_control_characters(title):
    host = UserFactory(hosting_granted=True)
    with pytest.raises(ValidationError, match="one line"):
        room_services.space_create(host=host, title=title)
    with pytest.raises(ValidationError, match="one line"):
        room_services.space_create(host=host, title="Fine", topics=["ok", "no\nway"])


def test_a_raw_form_post_with_crlf_in_the_title_changes_nothing(client):
    host = UserFactory(hosting_granted=True)
    client.force_login(host)
    response = client.post(reverse("rooms:space_new"), {"title": "Hi\r\nthere", "speak_policy": "everyone"})
    assert response.status_code == 200
    assert not Space.objects.filter(host=host).exists()


def test_schedule_form_refuses_control_characters(client):
    host = UserFactory(hosting_granted=True)
    client.force_login(host)
    response = client.post(reverse("rooms:schedule_new"), {"title": "A\r\nB", "topics": ""})
    assert response.status_code == 400  # the schedule form answers its errors with 400
    assert "one line" in response.content.decode()
    assert not Space.objects.filter(host=host).exists()


def test_display_name_refuses_control_characters_in_form_and_service(client):
    person = UserFactory()
    client.force_login(person)
    response = client.post(
        reverse("profile_edit"), {"display_name": "Me\r\nBcc: x@example.com", "bio": "", "time_zone": "UTC"}
    )
    assert response.status_code == 200 and "one line" in response.content.decode()
    with pytest.raises(ValidationError):
        account_services.profile_update(user=person, display_name="a\nb", bio="", time_zone="UTC")
    person.refresh_from_db()
    assert "\n" not in person.display_name


def test_a_stored_title_with_a_line_break_still_emails_with_a_one_line_subject():
    person = UserFactory()
    services.notify(user=person, kind="ticket_refund", title="Refunded: Talk\r\nBcc: x@example.com")
    assert drain().get("sent") == 1
    assert [m.subject for m in mail.outbox] == ["Refunded: Talk Bcc: x@example.com"]
    assert Notification.objects.filter(user=person).count() == 1


def test_the_in_app_notice_is_written_even_when_email_keeps_failing(settings):
    # A real SMTP connection to a port nobody listens on: every send fails.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    person = UserFactory()
    delivery = services.notify(user=person, kind="ticket_refund", title="Refunded: $5.00", body="Back.")
    assert drain().get("retry") == 1
    note = Notification.objects.get(user=person)
    assert (note.title, note.body) == ("Refunded: $5.00", "Back.")
    # The retries are for the email only: the notice is never written twice, and stays after giving up.
    for _ in range(6):
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).update(
            due_at=delivery.created_at
        )
        drain()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert Notification.objects.filter(user=person).count() == 1
