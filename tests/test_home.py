"""The home page: live bar, discovery and upcoming, in a fixed number of queries."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts import services as accounts
from rooms import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SHARED_KEYS = ["rooms:live-stage", "rooms:discover"]


@pytest.fixture
def world():
    viewer = UserFactory(username="viewer")
    hosts = [UserFactory(username=f"host{i}", hosting_granted=True) for i in range(4)]
    for host in hosts[:2]:
        accounts.follow_create(follower=viewer, followee=host)
    spaces = [services.space_create(host=h, title=f"Talk {i}") for i, h in enumerate(hosts)]
    return viewer, hosts, spaces


def test_live_bar_shows_only_followed_hosts_with_a_ring(client, world):
    viewer, hosts, spaces = world
    client.force_login(viewer)
    html = client.get(reverse("home")).content.decode()
    bar = html.split('data-testid="live-bar"')[1].split("</ul>")[0]
    assert "ring-live" in bar
    assert spaces[0].get_absolute_url() in bar and spaces[1].get_absolute_url() in bar
    assert spaces[2].get_absolute_url() not in bar
    # Discovery lists every live Space, followed or not.
    for space in spaces:
        assert space.title in html


def test_the_shared_sections_are_cached_for_a_few_seconds(client, world, settings, django_assert_num_queries):
    viewer, hosts, spaces = world
    settings.SPACES_HOME_CACHE_SECONDS = 30
    cache.delete_many(SHARED_KEYS)
    client.force_login(viewer)
    client.get(reverse("home"))  # fills the cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as cold:
        cache.delete_many(SHARED_KEYS)
        client.get(reverse("home"))
    with CaptureQueriesContext(connection) as warm:
        response = client.get(reverse("home"))
    assert len(warm) == len(cold) - 2  # the stage list and the discover list
    assert "Talk 3" in response.content.decode()
    cache.delete_many(SHARED_KEYS)


def test_home_query_count_does_not_grow(client, django_assert_max_num_queries):
    from tests.factories import make_users

    viewer = UserFactory()
    for other in make_users(100, prefix="followed"):
        accounts.follow_create(follower=viewer, followee=other)
    for i in range(8):
        services.space_create(host=UserFactory(username=f"h{i}", hosting_granted=True), title=f"S{i}")
    client.force_login(viewer)
    with django_assert_max_num_queries(9):
        assert client.get(reverse("home")).status_code == 200


def test_a_space_going_live_or_ending_shows_at_once_despite_the_cache(
    client, world, settings, django_capture_on_commit_callbacks
):
    viewer, hosts, spaces = world
    settings.SPACES_HOME_CACHE_SECONDS = 30
    cache.delete_many(SHARED_KEYS)
    client.force_login(viewer)
    client.get(reverse("home"))  # fills the cache
    newcomer = UserFactory(username="newcomer", hosting_granted=True)
    accounts.follow_create(follower=viewer, followee=newcomer)
    with django_capture_on_commit_callbacks(execute=True):
        fresh = services.space_create(host=newcomer, title="Just started")
    html = client.get(reverse("home")).content.decode()
    assert "Just started" in html
    assert fresh.get_absolute_url() in html.split('data-testid="live-bar"')[1].split("</ul>")[0]
    with django_capture_on_commit_callbacks(execute=True):
        services.space_end(space=fresh, by=newcomer)
    assert "Just started" not in client.get(reverse("home")).content.decode()
    cache.delete_many(SHARED_KEYS)


def test_the_bar_follows_the_viewers_follows_at_once_while_the_shared_list_is_cached(client, world, settings):
    viewer, hosts, spaces = world
    settings.SPACES_HOME_CACHE_SECONDS = 30
    cache.delete_many(SHARED_KEYS)
    client.force_login(viewer)
    client.get(reverse("home"))  # fills the shared cache
    html = client.get(reverse("home")).content.decode()
    bar = html.split('data-testid="live-bar"')[1].split("</ul>")[0]
    assert spaces[1].get_absolute_url() in bar and spaces[2].get_absolute_url() not in bar
    # Following someone who is live shows them at once, the shared list notwithstanding.
    accounts.follow_create(follower=viewer, followee=hosts[2])
    bar = client.get(reverse("home")).content.decode().split('data-testid="live-bar"')[1].split("</ul>")[0]
    assert spaces[2].get_absolute_url() in bar
    accounts.follow_delete(follower=viewer, followee=hosts[1])
    bar = client.get(reverse("home")).content.decode().split('data-testid="live-bar"')[1].split("</ul>")[0]
    assert spaces[1].get_absolute_url() not in bar
    cache.delete_many(SHARED_KEYS)


# --- what one viewer sees of their own, cached until it changes ----------------------


def upcoming_titles(client) -> list[str]:
    return [s.title for s in client.get(reverse("home")).context["upcoming"]]


def test_the_upcoming_list_is_cached_per_viewer_and_follows_every_change_at_once(
    client, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from rooms import reminders, scheduling

    settings.SPACES_VIEWER_CACHE_SECONDS = 300
    cache.clear()
    viewer = UserFactory(username="upcoming-viewer")
    host = UserFactory(username="upcoming-host", hosting_granted=True)
    other = UserFactory(username="upcoming-other", hosting_granted=True)
    accounts.follow_create(follower=viewer, followee=host)
    client.force_login(viewer)
    assert upcoming_titles(client) == []
    with django_capture_on_commit_callbacks(execute=True):
        planned = scheduling.space_schedule(
            host=host, title="Planned", scheduled_for=timezone.now() + timedelta(days=1)
        )
    assert upcoming_titles(client) == ["Planned"]
    # Served again from the cache: the page reads no scheduled Spaces.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as warm:
        client.get(reverse("home"))
    assert warm.captured_queries and not any("rooms_reminder" in q["sql"] for q in warm.captured_queries)
    # A reminder, a move, a new follow, an unfollow, a cancellation: each shows on the next load.
    with django_capture_on_commit_callbacks(execute=True):
        reminders.reminder_set(user=viewer, space=planned)
    assert client.get(reverse("home")).context["upcoming"][0].viewer_reminded is True
    with django_capture_on_commit_callbacks(execute=True):
        scheduling.space_reschedule(
            space=planned, by=host, title="Moved", scheduled_for=timezone.now() + timedelta(days=2)
        )
    assert upcoming_titles(client) == ["Moved"]
    with django_capture_on_commit_callbacks(execute=True):
        scheduling.space_schedule(
            host=other, title="Other's", scheduled_for=timezone.now() + timedelta(days=3)
        )
    assert upcoming_titles(client) == ["Moved"]
    with django_capture_on_commit_callbacks(execute=True):
        accounts.follow_create(follower=viewer, followee=other)
    assert upcoming_titles(client) == ["Moved", "Other's"]
    with django_capture_on_commit_callbacks(execute=True):
        accounts.follow_delete(follower=viewer, followee=host)
    assert upcoming_titles(client) == ["Other's"]
    cache.clear()


def test_the_bells_count_is_cached_until_a_notification_arrives_or_is_read(
    client, settings, django_capture_on_commit_callbacks
):
    from notifications import services as notifications
    from notifications.models import Notification

    settings.SPACES_VIEWER_CACHE_SECONDS = 300
    cache.clear()
    person = UserFactory()
    client.force_login(person)

    def badge() -> str:
        html = client.get(reverse("home")).content.decode()
        return html.split('data-testid="notifications-bell"')[1].split("</a>")[0]

    assert "0 unread" not in badge() and "unread" not in badge().split(">")[0]
    with django_capture_on_commit_callbacks(execute=True):
        Notification.objects.create(user=person, kind="test", title="One")
        Notification.objects.create(user=person, kind="test", title="Two")
    assert "2 unread" in badge()
    # Counted once, then kept: a row written behind the services' back is not seen until a change.
    Notification.objects.filter(user=person).update(title="Changed quietly")
    assert "2 unread" in badge()
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notifications_mark_read(user=person)
    assert "unread" not in badge().split(">")[0]
    cache.clear()
