"""accounts/middleware.py: a page's own query brings the signed-in user in the same statement, and
who is signed in is still decided by Django's checks."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.contrib.auth.hashers import make_password
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from accounts import services as accounts
from accounts.models import User
from rooms import services as rooms
from rooms.scheduling import space_schedule
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(client):
    host = UserFactory(username="host", hosting_granted=True)
    space = rooms.space_create(host=host, title="Night radio")
    listener = UserFactory(username="listener", display_name="Lee Listener")
    client.force_login(listener)
    client.get(reverse("home"))  # the session is in the cache, as on every later page
    return space, listener


def test_the_space_page_and_the_user_come_in_one_query(client, live, django_assert_num_queries):
    space, _ = live
    with django_assert_num_queries(1) as captured:
        page = client.get(space.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="space-config"' in html  # the live page, for a signed-in viewer
    assert f'href="{reverse("profile", args=["listener"])}"' in html  # the top bar is theirs
    assert "accounts_user" in captured.captured_queries[0]["sql"]


def test_a_session_whose_password_changed_is_signed_out_though_its_user_was_read(client, live):
    space, listener = live
    User.objects.filter(pk=listener.pk).update(password=make_password("changed elsewhere"))
    page = client.get(space.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="space-config"' not in html  # the page for someone signed out
    assert reverse("account_login") in html
    assert "_auth_user_id" not in client.session  # Django flushed the session


def test_a_deactivated_account_gets_no_user(client, live):
    space, listener = live
    User.objects.filter(pk=listener.pk).update(is_active=False)
    html = client.get(space.get_absolute_url()).content.decode()
    assert 'id="space-config"' not in html
    assert reverse("account_login") in html


def test_the_home_page_shows_times_in_the_viewers_zone(client, django_assert_num_queries, settings):
    settings.SPACES_HOME_CACHE_SECONDS = 60
    host = UserFactory(username="planner", hosting_granted=True)
    viewer = UserFactory(username="viewer", time_zone="Asia/Tokyo")
    accounts.follow_create(follower=viewer, followee=host)
    when = (timezone.now() + dt.timedelta(days=2)).replace(hour=1, minute=30, second=0, microsecond=0)
    space_schedule(host=host, title="Morning in Tokyo", scheduled_for=when)
    client.force_login(viewer)
    client.get(reverse("home"))  # fills the shared sections and the session's cache
    with django_assert_num_queries(1):  # upcoming Spaces and the viewer, in one statement
        html = client.get(reverse("home")).content.decode()
    assert "Morning in Tokyo" in html
    tokyo = when.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%H:%M") == "10:30"
    assert f"{tokyo:%H:%M}" in html


def test_a_database_that_cannot_be_reached_gives_the_503_page(client, live, monkeypatch):
    space, _ = live

    def unreachable(*asks):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("accounts.middleware.ask_together", unreachable)
    page = client.get(space.get_absolute_url())
    assert page.status_code == 503
    assert "We'll be right back" in page.content.decode()


def test_a_signed_in_page_without_its_own_query_reads_the_user_as_before(client, live, monkeypatch):
    # The profile page asks nothing ahead: the user is read when the time zone is set, and a
    # database that cannot be reached there gives the 503 page too.
    _, listener = live
    assert client.get(reverse("profile", args=["host"])).status_code == 200

    def unreachable(**values):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("accounts.backends._user_by_id.first", unreachable)
    page = client.get(reverse("profile", args=["host"]))
    assert page.status_code == 503
