"""The signed-in top bar (spaces_project/top_bar.py): rendered once per viewer state, with each
page's own CSRF token spliced in, and never showing a stale name, picture or count."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from notifications.models import Notification
from spaces_project import top_bar
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_kept():
    top_bar._kept.clear()
    yield
    top_bar._kept.clear()


def nav(html: str) -> str:
    return re.search(r'<nav class="topnav">(.*?)</nav>', html, re.S).group(1)


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_each_page_gets_its_own_token_in_the_kept_markup_and_sign_out_works():
    user = UserFactory(username="ada", display_name="")
    client = signed_in(user)
    first, second = (nav(client.get(reverse("home")).content.decode()) for _ in range(2))
    tokens = [re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', n).group(1) for n in (first, second)]
    assert tokens[0] != tokens[1]
    assert first.replace(tokens[0], "") == second.replace(tokens[1], "")  # the rest is the same markup
    assert len(top_bar._kept) == 1
    assert 'href="/u/ada/"' in first and ">A</span>" in first and "Sign out" in first
    assert client.post(reverse("account_logout"), {"csrfmiddlewaretoken": tokens[0]}).status_code == 302


def test_a_new_name_or_an_unread_notification_shows_on_the_next_page():
    user = UserFactory(username="ada", display_name="")
    client = signed_in(user)
    before = nav(client.get(reverse("home")).content.decode())
    assert ">A</span>" in before and "Notifications, 1 unread" not in before
    user.display_name = "Zoe"
    user.save(update_fields=["display_name"])
    Notification.objects.create(user=user, kind="test", title="Hello")
    after = nav(client.get(reverse("home")).content.decode())
    assert ">Z</span>" in after
    assert "Notifications, 1 unread" in after
    assert len(top_bar._kept) == 2


def test_viewers_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(top_bar, "KEPT", 2)
    for _ in range(3):
        signed_in(UserFactory()).get(reverse("home"))
    assert len(top_bar._kept) == 2


def test_without_a_request_there_is_no_token_and_nothing_is_kept():
    html = render_to_string("base.html", {"user": UserFactory()})
    assert "Sign out" in nav(html) and "csrfmiddlewaretoken" not in html
    assert top_bar._kept == {}
