"""A profile lists its person's Spaces: live now, upcoming, and past with a link to the published
transcript, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from rooms import services
from rooms.models import Space, Transcript
from rooms.rules import PROFILE_PAST_SHOWN
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def ended(host, title: str, days_ago: int) -> Space:
    at = timezone.now() - dt.timedelta(days=days_ago)
    return Space.objects.create(
        host=host, title=title, state=Space.State.ENDED, started_at=at - dt.timedelta(hours=1), ended_at=at
    )


@pytest.fixture
def ana():
    host = UserFactory(username="ana", hosting_granted=True)
    live = services.space_create(host=host, title="On air now")
    soon = Space.objects.create(
        host=host,
        title="Sunday radio hour",
        state=Space.State.SCHEDULED,
        scheduled_for=timezone.now() + dt.timedelta(days=2),
    )
    published = ended(host, "Bebop for beginners", 1)
    Transcript.objects.create(space=published, published_at=timezone.now())
    private = ended(host, "Private chat", 2)
    Transcript.objects.create(space=private)
    deleted = ended(host, "Deleted words", 3)
    Transcript.objects.create(space=deleted, published_at=timezone.now(), deleted_at=timezone.now())
    Space.objects.create(host=host, title="Called off", state=Space.State.CANCELLED)
    other = UserFactory(username="someone", hosting_granted=True)
    ended(other, "Not Ana's", 1)
    return {"host": host, "live": live, "soon": soon, "published": published, "private": private}


def section(html: str, testid: str) -> str:
    """The element marked `testid`, from its opening tag to its closing tag (a link or a list)."""
    start = html.rindex("<", 0, html.index(f'data-testid="{testid}"'))
    tag = html[start + 1 : html.index(" ", start)]
    return html[start : html.index(f"</{tag}>", start)]


def test_profile_shows_live_upcoming_and_past_spaces(client, ana):
    html = client.get(reverse("profile", args=["ana"])).content.decode()
    assert ana["live"].get_absolute_url() in section(html, "profile-live")
    assert reverse("rooms:scheduled_space", args=[ana["soon"].pk]) in section(html, "profile-upcoming")
    past = section(html, "profile-past")
    assert past.index("Bebop for beginners") < past.index("Private chat") < past.index("Deleted words")
    assert "Called off" not in html and "Not Ana&#x27;s" not in html and "Not Ana's" not in html


def test_only_a_published_transcript_is_linked(client, ana):
    html = client.get(reverse("profile", args=["ana"])).content.decode()
    past = section(html, "profile-past")
    assert reverse("rooms:transcript", args=[ana["published"].pk]) in past
    assert reverse("rooms:transcript", args=[ana["private"].pk]) not in past
    assert past.count("Transcript</a>") == 1


def test_a_person_who_never_hosted_has_no_live_or_upcoming_section(client):
    UserFactory(username="quiet")
    html = client.get(reverse("profile", args=["quiet"])).content.decode()
    assert 'data-testid="profile-live"' not in html and 'data-testid="profile-upcoming"' not in html
    assert "No past Spaces yet." in html


def test_past_spaces_are_capped_most_recent_first(client, ana):
    for i in range(PROFILE_PAST_SHOWN + 5):
        ended(ana["host"], f"Old show {i}", 10 + i)
    html = client.get(reverse("profile", args=["ana"])).content.decode()
    past = section(html, "profile-past")
    assert past.count("<li") == PROFILE_PAST_SHOWN
    assert "Bebop for beginners" in past and f"Old show {PROFILE_PAST_SHOWN + 4}" not in past


def test_profile_query_count_does_not_grow_with_spaces(client, ana, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("profile", args=["ana"])
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(6):
        Transcript.objects.create(space=ended(ana["host"], f"More {i}", 5 + i), published_at=timezone.now())
        Space.objects.create(
            host=ana["host"],
            title=f"Later {i}",
            state=Space.State.SCHEDULED,
            scheduled_for=timezone.now() + dt.timedelta(days=3 + i),
        )
    with django_assert_max_num_queries(len(few)):
        html = client.get(url).content.decode()
    assert html.count("Transcript</a>") == 7
