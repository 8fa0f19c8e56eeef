"""Link previews: Open Graph and Twitter card tags on Space, scheduled and profile pages, read with a
real HTML parser, with absolute URLs built from SITE_URL; and the oEmbed endpoint."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from rooms import services
from rooms.models import Space
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SITE = "https://spaces.example.org"


class HeadTags(HTMLParser):
    """Every <meta> (by property or name) and <link> (by rel) inside <head>."""

    def __init__(self):
        super().__init__()
        self.in_head = False
        self.meta: dict[str, str] = {}
        self.links: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "head":
            self.in_head = True
        elif self.in_head and tag == "meta" and "content" in attrs:
            key = attrs.get("property") or attrs.get("name")
            if key:
                self.meta[key] = attrs["content"]
        elif self.in_head and tag == "link":
            self.links[attrs.get("rel", "")] = attrs

    def handle_endtag(self, tag):
        if tag == "head":
            self.in_head = False


def head_tags(client, url: str) -> HeadTags:
    response = client.get(url)
    assert response.status_code == 200
    parser = HeadTags()
    parser.feed(response.content.decode())
    return parser


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def ana():
    return UserFactory(username="ana", display_name="Ana Lopez", hosting_granted=True, bio="Jazz and radio.")


def assert_preview(tags: HeadTags, *, url: str, title_has: str, description_has: list[str], image: str):
    meta = tags.meta
    for key in (
        "og:title",
        "og:description",
        "og:url",
        "og:image",
        "twitter:card",
        "twitter:title",
        "twitter:description",
        "twitter:image",
    ):
        assert meta.get(key), f"{key} is missing"
    assert meta["og:url"] == SITE + url
    assert tags.links["canonical"]["href"] == SITE + url
    assert title_has in meta["og:title"] and meta["twitter:title"] == meta["og:title"]
    for words in description_has:
        assert words in meta["og:description"]
    assert meta["og:image"] == meta["twitter:image"] == image
    assert meta["twitter:card"] == "summary"
    oembed = tags.links["alternate"]
    assert oembed["type"] == "application/json+oembed"
    parts = urlsplit(oembed["href"])
    assert f"{parts.scheme}://{parts.netloc}" == SITE and parts.path == reverse("oembed")
    assert parse_qs(parts.query)["url"] == [SITE + url]


def logo_url() -> str:
    from django.templatetags.static import static

    return SITE + static("img/logo-512.png")


def test_a_live_space_page_carries_its_preview_signed_in_and_out(client, ana):
    space = services.space_create(host=ana, title="Jazz standards tonight", topics=["music"])
    url = space.get_absolute_url()
    expected = {
        "url": url,
        "title_has": "Jazz standards tonight",
        "image": logo_url(),
        "description_has": ["Live now", "Ana Lopez", "@ana", "music"],
    }
    assert_preview(head_tags(client, url), **expected)  # signed out: the closed page
    client.force_login(UserFactory())
    assert_preview(head_tags(client, url), **expected)  # signed in: the live page


def test_an_ended_space_page_says_it_ended(client, ana):
    space = Space.objects.create(host=ana, title="Bebop for beginners", state=Space.State.ENDED)
    tags = head_tags(client, space.get_absolute_url())
    assert_preview(
        tags,
        url=space.get_absolute_url(),
        title_has="Ended",
        image=logo_url(),
        description_has=["Ended", "Ana Lopez"],
    )


def test_a_scheduled_space_page_says_when_in_utc(client, ana):
    when = dt.datetime(2027, 3, 14, 18, 30, tzinfo=dt.UTC)
    space = Space.objects.create(
        host=ana, title="Sunday radio hour", state=Space.State.SCHEDULED, scheduled_for=when
    )
    url = reverse("rooms:scheduled_space", args=[space.pk])
    assert_preview(
        head_tags(client, url),
        url=url,
        title_has="Scheduled",
        image=logo_url(),
        description_has=["Scheduled for Sun 14 Mar 2027, 18:30 UTC", "Ana Lopez"],
    )


def test_a_profile_preview_uses_the_avatar_as_an_absolute_url(client, ana):
    User.objects.filter(pk=ana.pk).update(avatar="avatars/ana-256.webp", avatar_small="avatars/ana-64.webp")
    tags = head_tags(client, ana.get_absolute_url())
    assert_preview(
        tags,
        url=ana.get_absolute_url(),
        title_has="Ana Lopez (@ana)",
        image=SITE + "/media/avatars/ana-256.webp",
        description_has=["0 followers", "Jazz and radio."],
    )
    assert tags.meta["og:type"] == "profile"
    # A Space of a host with an avatar shows that avatar too.
    space = services.space_create(host=User.objects.get(pk=ana.pk), title="With a face")
    assert (
        head_tags(client, space.get_absolute_url()).meta["og:image"] == SITE + "/media/avatars/ana-256.webp"
    )


def test_tags_escape_what_people_typed(client):
    person = UserFactory(username="q", display_name='Quote "me" <b>')
    response = client.get(person.get_absolute_url())
    parser = HeadTags()
    parser.feed(response.content.decode())
    assert parser.meta["og:title"].startswith('Quote "me" <b>')
    assert "<b> (@q)" not in response.content.decode().split("</head>")[0]


# --- oEmbed --------------------------------------------------------------------------


def oembed(client, **params):
    return client.get(reverse("oembed"), params)


def test_oembed_answers_for_a_space_a_scheduled_space_and_a_profile(client, ana):
    live = services.space_create(host=ana, title="Jazz standards tonight")
    scheduled = Space.objects.create(
        host=ana,
        title="Later",
        state=Space.State.SCHEDULED,
        scheduled_for=timezone.now() + dt.timedelta(days=1),
    )
    for url, title in [
        (SITE + live.get_absolute_url(), "Jazz standards tonight · Live now"),
        (SITE + reverse("rooms:scheduled_space", args=[scheduled.pk]), "Later · Scheduled"),
        (SITE + ana.get_absolute_url() + "?ref=x", "Ana Lopez (@ana) on Spaces"),
    ]:
        response = oembed(client, url=url)
        assert response.status_code == 200, url
        body = response.json()
        # A Space's answer is the embeddable player (tests/test_guests.py); a profile's a link.
        assert body["version"] == "1.0" and body["type"] == ("link" if "(@ana)" in title else "rich")
        assert body["title"] == title
        assert body["author_name"] == "Ana Lopez" and body["author_url"] == SITE + ana.get_absolute_url()
        assert body["provider_url"] == SITE + "/"
        assert (
            body["thumbnail_url"] == logo_url() and body["thumbnail_width"] == body["thumbnail_height"] == 512
        )


def test_the_pages_discovery_link_is_answered(client, ana):
    space = services.space_create(host=ana, title="Round trip")
    href = head_tags(client, space.get_absolute_url()).links["alternate"]["href"]
    parts = urlsplit(href)
    response = client.get(parts.path + "?" + parts.query)
    assert response.status_code == 200 and response.json()["title"] == "Round trip · Live now"


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example.com/spaces/1/",
        "https://spaces.example.org.evil.test/u/ana/",
        "javascript:alert(1)//spaces.example.org/u/ana/",
        SITE + "/search?q=ana",
        SITE + "/spaces/999999/",
        SITE + "/u/nobody/",
        SITE + "/u/a%00b/",
        SITE + "/u/a\x00b/",
        "not a url",
    ],
)
def test_oembed_refuses_links_that_are_not_a_space_or_profile_here(client, ana, url):
    response = oembed(client, url=url)
    assert response.status_code == 404
    assert "not a link to a Space or a profile" in response.json()["error"]


def test_oembed_needs_a_url_and_offers_json_only(client, ana):
    assert oembed(client).status_code == 400
    assert "?url=" in oembed(client).json()["error"]
    response = oembed(client, url=SITE + ana.get_absolute_url(), format="xml")
    assert response.status_code == 501
    assert client.post(reverse("oembed"), {"url": SITE + ana.get_absolute_url()}).status_code == 405
