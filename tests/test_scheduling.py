"""Scheduling Spaces: the 30-day and 10-upcoming limits, time zones, moving, cancelling, starting early."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from accounts.services import NotEligible
from notifications import services as notifications
from notifications.models import Delivery
from rooms import reminders, scheduling
from rooms.models import Reminder, Space
from rooms.selectors import upcoming_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MADRID = "Europe/Madrid"


def make_host(**kwargs):
    return UserFactory(hosting_granted=True, time_zone=kwargs.pop("time_zone", MADRID), **kwargs)


def schedule(
    host=None, *, hours: float = 48, at: datetime | None = None, title: str = "Night radio", **kwargs
):
    host = host or make_host()
    when = at or timezone.now() + timedelta(hours=hours)
    return scheduling.space_schedule(host=host, title=title, scheduled_for=when, **kwargs)


def frozen(moment: datetime):
    """Pin "now" for services and the database defaults alike."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def pending(space, kind=None):
    qs = Delivery.objects.filter(space_id=space.pk, status=Delivery.Status.PENDING)
    return qs.filter(kind=kind) if kind else qs


# --- who may schedule ---------------------------------------------------------


def test_account_below_the_follower_threshold_cannot_schedule():
    person = UserFactory(follower_count=599)
    with pytest.raises(NotEligible):
        scheduling.space_schedule(host=person, title="x", scheduled_for=timezone.now() + timedelta(days=1))
    assert not Space.objects.exists()


def test_account_at_the_follower_threshold_can_schedule():
    person = UserFactory(follower_count=600)
    space = scheduling.space_schedule(
        host=person, title="Hi", scheduled_for=timezone.now() + timedelta(days=1)
    )
    assert space.state == Space.State.SCHEDULED


# --- 30 days ahead ------------------------------------------------------------


def test_can_schedule_exactly_thirty_days_ahead():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    with frozen(now):
        space = schedule(at=now + timedelta(days=30))
    assert space.scheduled_for == now + timedelta(days=30)


def test_cannot_schedule_a_second_past_thirty_days():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    with frozen(now), pytest.raises(ValidationError, match="up to 30 days ahead") as exc:
        schedule(at=now + timedelta(days=30, seconds=1))
    assert exc.value.code == "too_far"


def test_cannot_schedule_in_the_past_or_now():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    with frozen(now):
        with pytest.raises(ValidationError, match="future"):
            schedule(at=now)
        assert schedule(at=now + timedelta(seconds=1)).scheduled_for > now


@pytest.mark.parametrize("days", [29, 31])
def test_days_ahead_is_a_named_rule(monkeypatch, days):
    monkeypatch.setattr("rooms.rules.SCHEDULE_MAX_DAYS", 31)
    space = schedule(hours=24 * days)
    assert space.pk


# --- 10 upcoming ----------------------------------------------------------------


def test_tenth_upcoming_space_is_allowed_and_the_eleventh_refused():
    host = make_host()
    for i in range(9):
        schedule(host, hours=24 + i)
    assert schedule(host, hours=40).pk  # the tenth
    with pytest.raises(ValidationError, match="already have 10 upcoming") as exc:
        schedule(host, hours=41)
    assert exc.value.code == "too_many"
    assert scheduling.upcoming_count(host=host) == 10


def test_cancelled_started_and_past_spaces_do_not_count_toward_the_limit():
    host = make_host()
    spaces = [schedule(host, hours=24 + i) for i in range(10)]
    scheduling.space_cancel(space=spaces[0], by=host)
    scheduling.space_start_early(space=spaces[1], by=host)
    Space.objects.filter(pk=spaces[2].pk).update(scheduled_for=timezone.now() - timedelta(minutes=5))
    for i in range(3):
        schedule(host, hours=60 + i)
    with pytest.raises(ValidationError):
        schedule(host, hours=70)


def test_limit_is_per_host():
    for _ in range(10):
        schedule(make_host(), hours=30)
    assert schedule(make_host(), hours=30).pk


# --- time zones -------------------------------------------------------------------


def test_wall_clock_time_in_the_hosts_zone_is_stored_in_utc_across_the_spring_change():
    # Madrid moves from CET (+1) to CEST (+2) at 02:00 on Sunday 29 March 2026.
    before = scheduling.local_to_utc(local=datetime(2026, 3, 28, 19, 0), tz_name=MADRID)
    after = scheduling.local_to_utc(local=datetime(2026, 3, 29, 19, 0), tz_name=MADRID)
    assert before == datetime(2026, 3, 28, 18, 0, tzinfo=UTC)
    assert after == datetime(2026, 3, 29, 17, 0, tzinfo=UTC)
    assert after - before == timedelta(hours=23)  # the night is an hour short


def test_time_skipped_by_the_spring_change_is_refused_with_advice():
    with pytest.raises(ValidationError, match="doesn't exist.*an hour later") as exc:
        scheduling.local_to_utc(local=datetime(2026, 3, 29, 2, 30), tz_name=MADRID)
    assert exc.value.code == "nonexistent_time"


def test_time_repeated_by_the_autumn_change_is_read_as_the_first_one():
    # 02:30 happens twice on Sunday 25 October 2026 in Madrid: first CEST (+2), then CET (+1).
    moment = scheduling.local_to_utc(local=datetime(2026, 10, 25, 2, 30), tz_name=MADRID)
    assert moment == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_each_viewer_sees_the_time_in_their_own_zone(client):
    now = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
    host = make_host()
    with frozen(now):
        space = schedule(host, at=scheduling.local_to_utc(local=datetime(2026, 3, 29, 19, 0), tz_name=MADRID))
    url = reverse("rooms:scheduled_space", args=[space.pk])
    client.force_login(host)
    assert "Sunday 29 March 2026, 19:00" in client.get(url).content.decode()
    # New York changed a fortnight earlier (EDT, -4): 17:00 UTC is 13:00 there.
    client.force_login(UserFactory(time_zone="America/New_York"))
    page = client.get(url).content.decode()
    assert "Sunday 29 March 2026, 13:00" in page and "EDT" in page
    client.logout()
    assert "17:00" in client.get(url).content.decode()


def test_schedule_form_reads_the_time_in_the_hosts_zone(client):
    host = make_host()
    client.force_login(host)
    local = datetime.now(zoneinfo.ZoneInfo(MADRID)).replace(second=0, microsecond=0) + timedelta(days=3)
    response = client.post(
        reverse("rooms:schedule_new"),
        {
            "title": "Design crit",
            "topics": "design, ux",
            "date": local.date(),
            "time": local.strftime("%H:%M"),
        },
    )
    space = Space.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("rooms:scheduled_space", args=[space.pk])
    assert space.scheduled_for == local.astimezone(UTC)
    assert space.topics == ["design", "ux"]


def test_schedule_form_shows_the_limit_error_next_to_the_form(client):
    host = make_host()
    for i in range(10):
        schedule(host, hours=30 + i)
    client.force_login(host)
    local = datetime.now(zoneinfo.ZoneInfo(MADRID)) + timedelta(days=3)
    response = client.post(
        reverse("rooms:schedule_new"),
        {"title": "One more", "date": local.date(), "time": local.strftime("%H:%M")},
    )
    assert response.status_code == 400
    assert "already have 10 upcoming Spaces" in response.content.decode()


def test_schedule_form_refuses_four_topics(client):
    client.force_login(make_host())
    local = datetime.now(zoneinfo.ZoneInfo(MADRID)) + timedelta(days=3)
    response = client.post(
        reverse("rooms:schedule_new"),
        {"title": "Busy", "topics": "a, b, c, d", "date": local.date(), "time": local.strftime("%H:%M")},
    )
    assert response.status_code == 400
    assert "at most 3 topics" in response.content.decode()


def test_ineligible_person_sees_why_they_cannot_schedule(client):
    client.force_login(UserFactory(follower_count=12))
    response = client.get(reverse("rooms:schedule_new"))
    assert response.status_code == 403
    assert "12 of 600 followers" in response.content.decode()


# --- host notifications --------------------------------------------------------------


def test_host_is_told_thirty_minutes_before_and_at_the_start_time():
    space = schedule(hours=5)
    due = dict(pending(space).values_list("kind", "due_at"))
    assert due == {
        reminders.HOST_HEADS_UP: space.scheduled_for - timedelta(minutes=30),
        reminders.HOST_START_TIME: space.scheduled_for,
    }


def test_space_scheduled_twenty_minutes_ahead_has_no_thirty_minute_warning():
    space = schedule(hours=20 / 60)
    assert set(pending(space).values_list("kind", flat=True)) == {reminders.HOST_START_TIME}


# --- reschedule ------------------------------------------------------------------------


def remind(space, n: int):
    people = [UserFactory(time_zone=tz) for tz in (["Asia/Tokyo", "America/New_York", MADRID] * n)[:n]]
    for person in people:
        reminders.reminder_set(user=person, space=space)
    return people


def test_moving_a_space_moves_everything_due_and_tells_everyone_reminded():
    host = make_host()
    space = schedule(host, hours=48)
    old = space.scheduled_for
    people = remind(space, 3)
    new = old + timedelta(days=2, hours=3)

    scheduling.space_reschedule(space=space, by=host, scheduled_for=new)

    assert not Delivery.objects.filter(space_id=space.pk, due_at=old, status=Delivery.Status.PENDING).exists()
    assert set(pending(space, reminders.SPACE_STARTING).values_list("recipient_id", "due_at")) == {
        (p.pk, new) for p in people
    }
    assert pending(space, reminders.HOST_START_TIME).get().due_at == new
    assert pending(space, reminders.HOST_HEADS_UP).get().due_at == new - timedelta(minutes=30)
    moved = {d.recipient_id: d for d in pending(space, reminders.SPACE_MOVED)}
    assert set(moved) == {p.pk for p in people}
    assert all(d.due_at <= timezone.now() for d in moved.values())
    # With the new time, in each person's own zone.
    tokyo = next(p for p in people if p.time_zone == "Asia/Tokyo")
    assert notifications.when_for(moment=new, tz_name="Asia/Tokyo") in moved[tokyo.pk].body
    assert "JST" in moved[tokyo.pk].body


def test_moving_a_space_back_owes_the_original_reminders_again():
    host = make_host()
    space = schedule(host, hours=48)
    old = space.scheduled_for
    (person,) = remind(space, 1)
    scheduling.space_reschedule(space=space, by=host, scheduled_for=old + timedelta(hours=1))
    scheduling.space_reschedule(space=space, by=host, scheduled_for=old)
    assert pending(space, reminders.SPACE_STARTING).get().due_at == old
    assert pending(space, reminders.SPACE_MOVED).filter(recipient=person).count() == 2


def test_renaming_without_moving_tells_nobody_but_updates_what_is_due():
    host = make_host()
    space = schedule(host, hours=48)
    remind(space, 2)
    scheduling.space_reschedule(space=space, by=host, title="New name")
    assert not pending(space, reminders.SPACE_MOVED).exists()
    assert set(pending(space, reminders.SPACE_STARTING).values_list("title", flat=True)) == {
        "Starting now: New name"
    }


def test_only_the_host_can_move_a_space():
    space = schedule(hours=48)
    with pytest.raises(PermissionDenied):
        scheduling.space_reschedule(
            space=space, by=UserFactory(is_staff=True), scheduled_for=timezone.now() + timedelta(days=3)
        )


def test_cannot_move_beyond_thirty_days():
    host = make_host()
    space = schedule(host, hours=48)
    with pytest.raises(ValidationError, match="30 days"):
        scheduling.space_reschedule(space=space, by=host, scheduled_for=timezone.now() + timedelta(days=31))
    space.refresh_from_db()
    assert space.scheduled_for < timezone.now() + timedelta(days=3)


def test_edit_page_is_prefilled_in_the_hosts_zone_and_moves_the_space(client):
    host = make_host()
    space = schedule(host, hours=72)
    client.force_login(host)
    page = client.get(reverse("rooms:schedule_edit", args=[space.pk])).content.decode()
    local = space.scheduled_for.astimezone(zoneinfo.ZoneInfo(MADRID))
    assert f'value="{local:%H:%M}"' in page
    later = local + timedelta(hours=2)
    response = client.post(
        reverse("rooms:schedule_edit", args=[space.pk]),
        {"title": space.title, "topics": "", "date": later.date(), "time": later.strftime("%H:%M")},
        follow=True,
    )
    space.refresh_from_db()
    assert space.scheduled_for == later.replace(second=0, microsecond=0).astimezone(UTC)
    assert "Everyone reminded has been told the new time" in response.content.decode()


# --- cancel -----------------------------------------------------------------------------


def test_cancelling_withdraws_everything_due_and_tells_everyone_reminded():
    host = make_host()
    space = schedule(host, hours=48)
    people = remind(space, 3)
    scheduling.space_cancel(space=space, by=host, reason="Flu")
    space.refresh_from_db()
    assert space.state == Space.State.CANCELLED
    assert set(pending(space).values_list("kind", "recipient_id")) == {
        (reminders.SPACE_CANCELLED, p.pk) for p in people
    }
    assert all("Flu" in d.body for d in pending(space))
    assert (
        Delivery.objects.filter(space_id=space.pk, kind__in=reminders.TIMED_KINDS)
        .exclude(status=Delivery.Status.CANCELLED)
        .count()
        == 0
    )


def test_a_moderator_can_cancel_but_a_stranger_or_plain_staff_cannot():
    from django.contrib.auth.models import Group

    from accounts.groups import MODERATORS, ensure_moderators_group

    space = schedule(hours=48)
    with pytest.raises(PermissionDenied):
        scheduling.space_cancel(space=space, by=UserFactory())
    with pytest.raises(PermissionDenied):
        scheduling.space_cancel(space=space, by=UserFactory(is_staff=True))
    ensure_moderators_group()
    moderator = UserFactory(is_staff=True)
    moderator.groups.add(Group.objects.get(name=MODERATORS))
    scheduling.space_cancel(space=space, by=moderator)
    space.refresh_from_db()
    assert space.ended_reason == "cancelled_by_staff"


def test_a_cancelled_space_cannot_be_cancelled_or_moved_again():
    host = make_host()
    space = schedule(host, hours=48)
    scheduling.space_cancel(space=space, by=host)
    with pytest.raises(ValidationError, match="cancelled"):
        scheduling.space_cancel(space=space, by=host)
    with pytest.raises(ValidationError):
        scheduling.space_reschedule(space=space, by=host, scheduled_for=timezone.now() + timedelta(days=2))


def test_cancel_button_cancels_and_the_page_says_so(client):
    host = make_host()
    space = schedule(host, hours=48)
    remind(space, 2)
    client.force_login(host)
    response = client.post(reverse("rooms:schedule_cancel", args=[space.pk]), {"reason": ""}, follow=True)
    page = response.content.decode()
    assert 'data-testid="cancelled"' in page
    assert "2 people had set a reminder" in page


# --- start early -------------------------------------------------------------------------


def test_starting_early_tells_everyone_reminded_and_drops_the_start_time_notices():
    host = make_host()
    space = schedule(host, hours=48)
    people = remind(space, 2)
    space = scheduling.space_start_early(space=space, by=host)
    assert space.state == Space.State.LIVE
    live = pending(space, reminders.SPACE_LIVE)
    assert set(live.values_list("recipient_id", flat=True)) == {p.pk for p in people}
    assert live.first().title == f"{host.name} is live: Night radio"
    assert not pending(space).exclude(kind=reminders.SPACE_LIVE).exists()


def test_only_the_host_sees_start_now_and_edit(client):
    host = make_host()
    space = schedule(host, hours=48)
    url = reverse("rooms:scheduled_space", args=[space.pk])
    client.force_login(host)
    page = client.get(url).content.decode()
    assert 'data-testid="start-now"' in page and 'data-testid="edit"' in page
    assert 'data-testid="set-reminder"' not in page
    client.force_login(UserFactory())
    page = client.get(url).content.decode()
    assert 'data-testid="start-now"' not in page and 'data-testid="set-reminder"' in page
    assert client.post(reverse("rooms:schedule_start", args=[space.pk])).status_code == 403


def test_start_now_button_takes_the_host_to_the_live_space(client):
    host = make_host()
    space = schedule(host, hours=48)
    client.force_login(host)
    response = client.post(reverse("rooms:schedule_start", args=[space.pk]))
    assert response.status_code == 302
    assert response["Location"] == space.get_absolute_url()
    space.refresh_from_db()
    assert space.state == Space.State.LIVE


# --- the scheduled page and reminders over htmx ---------------------------------------------


def test_scheduled_page_shows_time_topics_host_and_reminder_count(client):
    space = schedule(topics=["jazz", "vinyl"])
    remind(space, 4)
    page = client.get(reverse("rooms:scheduled_space", args=[space.pk])).content.decode()
    assert "jazz" in page and "vinyl" in page
    assert space.host.name in page
    assert "4 reminded" in page
    assert "Sign in to set a reminder" in page


def test_reminder_button_swaps_in_place_with_htmx(client):
    space = schedule()
    person = UserFactory()
    client.force_login(person)
    url = reverse("rooms:reminder_toggle", args=[space.pk])
    response = client.post(url, {"remind": "on"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert 'data-testid="remove-reminder"' in html and "1 reminded" in html
    assert Reminder.objects.filter(user=person, space=space).exists()
    html = client.post(url, {"remind": "off"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="set-reminder"' in html and "0 reminded" in html
    assert not Reminder.objects.exists()


def test_reminder_needs_sign_in(client):
    space = schedule()
    response = client.post(reverse("rooms:reminder_toggle", args=[space.pk]), {"remind": "on"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- add to calendar -------------------------------------------------------------------------


def read_event(client, space):
    response = client.get(reverse("rooms:schedule_calendar", args=[space.pk]))
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content).walk("VEVENT")[0]


def test_calendar_file_keeps_its_uid_and_counts_moves(client):
    host = make_host()
    space = schedule(host, hours=48, topics=["jazz"])
    first = read_event(client, space)
    assert first.get("SUMMARY") == "Night radio"
    assert first.decoded("DTSTART") == space.scheduled_for.replace(microsecond=0)
    assert int(first.get("SEQUENCE")) == 0

    new = space.scheduled_for + timedelta(hours=5)
    scheduling.space_reschedule(space=space, by=host, scheduled_for=new)
    moved = read_event(client, space)
    assert moved.get("UID") == first.get("UID")
    assert int(moved.get("SEQUENCE")) == 1
    assert moved.decoded("DTSTART") == new.replace(microsecond=0)

    scheduling.space_cancel(space=space, by=host)
    cancelled = read_event(client, space)
    assert cancelled.get("UID") == first.get("UID")
    assert int(cancelled.get("SEQUENCE")) == 2
    assert cancelled.get("STATUS") == "CANCELLED"


# --- the home page's upcoming list --------------------------------------------------------------


def test_upcoming_lists_followed_hosts_soonest_first_in_few_queries(django_assert_max_num_queries):
    from accounts.services import follow_create

    viewer = UserFactory()
    hosts = [make_host() for _ in range(6)]
    for h in hosts[:5]:
        follow_create(follower=viewer, followee=h)
    spaces = [schedule(h, hours=10 + i) for i, h in enumerate(hosts)]
    reminders.reminder_set(user=viewer, space=spaces[2])
    scheduling.space_cancel(space=spaces[3], by=hosts[3])
    with django_assert_max_num_queries(1):
        upcoming = upcoming_for(viewer=viewer)
        titles = [(s.pk, s.host.username, s.reminder_count, s.viewer_reminded) for s in upcoming]
    assert [pk for pk, *_ in titles] == [spaces[0].pk, spaces[1].pk, spaces[2].pk, spaces[4].pk]
    assert titles[2][2:] == (1, True)


def test_upcoming_partial_renders(client, django_assert_max_num_queries):
    from django.template.loader import render_to_string

    from accounts.services import follow_create

    viewer = UserFactory()
    for i in range(8):
        host = make_host()
        follow_create(follower=viewer, followee=host)
        schedule(host, hours=5 + i, title=f"Show {i}")
    upcoming = upcoming_for(viewer=viewer)
    with django_assert_max_num_queries(0):
        html = render_to_string("rooms/_upcoming.html", {"upcoming": upcoming, "user": viewer})
    assert html.count("upcoming-row") == 8 and "Show 0" in html
    assert "Nothing scheduled" in render_to_string("rooms/_upcoming.html", {"upcoming": [], "user": viewer})


# --- ticket holders ------------------------------------------------------------------------------


def test_cancelling_a_ticketed_space_refunds_and_tells_ticket_holders_and_the_reminded():
    from tests.test_ticketing import buy
    from tests.test_ticketing_support import ticketed_space
    from ticketing.models import Ticket

    space = ticketed_space()
    buyer, fan = UserFactory(), UserFactory()
    ticket = buy(space, buyer)
    reminders.reminder_set(user=fan, space=space)
    scheduling.space_cancel(space=space, by=space.host, reason="Sick")
    ticket.refresh_from_db()
    assert ticket.status in (Ticket.Status.REFUNDING, Ticket.Status.REFUNDED)
    assert ticket.refund_reason == "cancelled"
    told = set(pending(space, reminders.SPACE_CANCELLED).values_list("recipient_id", flat=True))
    assert told == {buyer.pk, fan.pk}


def test_moving_a_ticketed_space_tells_ticket_holders_the_new_time():
    from tests.test_ticketing import buy
    from tests.test_ticketing_support import ticketed_space

    space = ticketed_space()
    buyer = buy(space).holder
    scheduling.space_reschedule(
        space=space, by=space.host, scheduled_for=space.scheduled_for + timedelta(hours=2)
    )
    assert set(pending(space, reminders.SPACE_MOVED).values_list("recipient_id", flat=True)) == {buyer.pk}
