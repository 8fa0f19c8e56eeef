"""The small rough edges a new user hits (issue 22, item 8), each pinned where it broke."""

import re

import pytest
from django.urls import reverse

from notifications.models import Notification
from rooms import services
from tests.factories import UserFactory
from tests.rooms_support import live_space, make_host

pytestmark = pytest.mark.django_db


def visible_label(html: str, testid: str) -> str:
    button = re.search(rf'<button[^>]*data-testid="{testid}"[^>]*>(.*?)</button>', html, re.S).group(1)
    button = re.sub(r'<span class="visually-hidden">.*?</span>', "", button)
    return re.sub(r"<[^>]+>", "", button).strip()


def test_follow_reads_following_at_once_and_after_a_reload(client):
    fan, star = UserFactory(), UserFactory()
    client.force_login(fan)
    swapped = client.post(reverse("follow", args=[star.username]), HTTP_HX_REQUEST="true").content.decode()
    reloaded = client.get(star.get_absolute_url()).content.decode()
    assert visible_label(swapped, "unfollow") == visible_label(reloaded, "unfollow") == "Following"


def test_block_is_not_as_loud_as_follow(client):

    viewer, other = UserFactory(), UserFactory()
    client.force_login(viewer)
    html = client.get(other.get_absolute_url()).content.decode()
    block = re.search(r'<button[^>]*data-testid="block"[^>]*>', html).group(0)
    assert "btn-danger" not in block and "btn-quiet-danger" in block


def test_a_notification_just_now_does_not_say_0_minutes_ago(client):
    person = UserFactory()
    Notification.objects.create(user=person, kind="test", title="Fresh", url="/")
    client.force_login(person)
    html = client.get(reverse("notifications:inbox")).content.decode()
    assert "0\xa0minutes" not in html and "0 minutes" not in html
    assert re.search(r'class="muted note-time"[^>]*>now<', html)


def test_start_a_space_while_live_links_to_the_live_space(client):
    host = make_host()
    space = live_space(host, title="Still going")
    client.force_login(host)
    html = client.get(reverse("rooms:space_new")).content.decode()
    assert 'data-testid="already-live"' in html and "Still going" in html
    assert f'href="{space.get_absolute_url()}" data-testid="back-to-live"' in html
    response = client.post(reverse("rooms:space_new"), {"title": "Another", "speak_policy": "everyone"})
    assert f'href="{space.get_absolute_url()}"' in response.content.decode()
    services.space_end(space=space, by=host)
    assert 'data-testid="already-live"' not in client.get(reverse("rooms:space_new")).content.decode()


def test_the_theme_cookie_sets_data_theme_on_the_page_and_the_no_script_toggle_keeps_it(client):
    assert "data-theme" not in client.get(reverse("home")).content.decode().split(">")[1]
    response = client.post(reverse("theme_set"), {"theme": "light", "next": "/u/someone/"})
    assert response.status_code == 302 and response["Location"] == "/u/someone/"
    assert response.cookies["theme"].value == "light"
    assert '<html lang="en" data-theme="light">' in client.get(reverse("home")).content.decode()
    # Anything but light or dark goes back to the system's theme; an outside `next` is not followed.
    response = client.post(reverse("theme_set"), {"theme": "<script>", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    assert response.cookies["theme"].value == ""
    client.cookies["theme"] = "purple"
    assert "data-theme" not in client.get(reverse("home")).content.decode().split(">")[1]
    assert client.get(reverse("theme_set")).status_code == 405
