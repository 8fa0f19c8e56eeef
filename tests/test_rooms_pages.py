"""The pages around a live Space, through Django's request cycle (request.user is a lazy object)."""

import pytest
from django.urls import reverse

from rooms.models import Participant, Space
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_eligible_host_starts_a_space_from_the_form(client):
    host = UserFactory(hosting_granted=True)
    client.force_login(host)
    response = client.post(
        reverse("rooms:space_new"),
        {"title": "Open source radio", "topics": "radio, oss, Radio", "speak_policy": "everyone"},
    )
    space = Space.objects.get(host=host)
    assert response.status_code == 302
    assert response["Location"] == space.get_absolute_url()
    assert (space.state, space.topics) == ("live", ["radio", "oss"])
    assert Participant.objects.get(space=space, user=host).role == "host"
    page = client.get(space.get_absolute_url())
    assert page.status_code == 200
    assert 'id="space-config"' in page.content.decode()


def test_the_start_form_shows_what_is_wrong(client):
    client.force_login(UserFactory(hosting_granted=True))
    response = client.post(
        reverse("rooms:space_new"), {"title": "x" * 71, "topics": "a, b, c, d", "speak_policy": "everyone"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "at most 70 characters" in html
    assert "at most 3 topics" in html
    assert not Space.objects.exists()


def test_a_host_already_live_is_told_instead_of_opening_a_second_space(client):
    host = UserFactory(hosting_granted=True)
    client.force_login(host)
    data = {"title": "First", "speak_policy": "everyone"}
    client.post(reverse("rooms:space_new"), data)
    response = client.post(reverse("rooms:space_new"), {**data, "title": "Second"})
    assert response.status_code == 200
    assert Space.objects.filter(host=host).count() == 1
    first = Space.objects.get(host=host)
    html = response.content.decode()
    assert 'data-testid="already-live"' in html  # told where the live one is, with a way back
    assert f'href="{first.get_absolute_url()}" data-testid="back-to-live"' in html


def test_a_listener_opens_the_live_page_and_a_stranger_to_a_ticketless_space_too(client):
    host = UserFactory(hosting_granted=True)
    client.force_login(host)
    client.post(reverse("rooms:space_new"), {"title": "Open", "speak_policy": "everyone"})
    space = Space.objects.get()
    client.force_login(UserFactory())
    assert client.get(space.get_absolute_url()).status_code == 200
    client.logout()
    anonymous = client.get(space.get_absolute_url())
    assert anonymous.status_code == 200  # listening as a guest (tests/test_guests.py)
    assert 'data-testid="guest-banner"' in anonymous.content.decode()
