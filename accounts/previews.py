"""Link previews: what a page tells a site that unfurls its link (Open Graph and Twitter card tags,
templates/_link_preview.html) and what the oEmbed endpoint answers. Every URL in one is absolute,
built from settings.SITE_URL, because whoever reads it is not on this site."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse

from .rules import AVATAR_SIZES

LOGO = "img/logo-512.png"
LOGO_SIZE = 512
DESCRIPTION_MAX_CHARS = 200


@dataclass(frozen=True)
class LinkPreview:
    title: str
    description: str
    url: str
    image: str
    image_size: int
    author_name: str
    author_url: str
    og_type: str = "website"
    embed_url: str = ""  # a player that may be put in an iframe (oEmbed "rich")

    @property
    def oembed_url(self) -> str:
        return absolute_url(reverse("oembed")) + "?" + urlencode({"url": self.url, "format": "json"})


def absolute_url(path_or_url: str) -> str:
    """`path_or_url` as an absolute URL on this site (a storage or CDN URL that already has a scheme
    is kept as it is)."""
    if urlsplit(path_or_url).scheme:
        return path_or_url
    return settings.SITE_URL + "/" + path_or_url.lstrip("/")


def preview_image(user) -> tuple[str, int]:
    """The person's avatar (its larger square), or the site's logo when they have none."""
    if user.avatar:
        return absolute_url(user.avatar.url), AVATAR_SIZES[0]
    return absolute_url(static(LOGO)), LOGO_SIZE


def shorten(text: str, limit: int = DESCRIPTION_MAX_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def profile_preview(person) -> LinkPreview:
    image, size = preview_image(person)
    url = absolute_url(person.get_absolute_url())
    followers = f"{person.follower_count} follower{'' if person.follower_count == 1 else 's'}"
    about = person.bio or f"Listen to @{person.username}'s Spaces."
    return LinkPreview(
        title=f"{person.name} (@{person.username}) on Spaces",
        description=shorten(f"{followers}. {about}"),
        url=url,
        image=image,
        image_size=size,
        author_name=person.name,
        author_url=url,
        og_type="profile",
    )
