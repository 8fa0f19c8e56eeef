"""Link previews of a Space's pages (accounts.previews): title, state, host and the host's avatar."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from accounts.previews import LinkPreview, absolute_url, preview_image, shorten

from .models import Space


def space_page_url(space: Space) -> str:
    """The page a Space's link should point at: its scheduled page until it starts."""
    if space.state in (Space.State.SCHEDULED, Space.State.CANCELLED) and space.scheduled_for:
        return reverse("rooms:scheduled_space", args=[space.pk])
    return space.get_absolute_url()


STATE_WORDS = {
    Space.State.LIVE: "Live now",
    Space.State.ENDED: "Ended",
    Space.State.CANCELLED: "Cancelled",
    Space.State.SCHEDULED: "Scheduled",
}


def _when(space: Space) -> str:
    """When a scheduled Space starts, in UTC: a preview is read in every time zone."""
    if space.state != Space.State.SCHEDULED or not space.scheduled_for:
        return ""
    return f" for {date_format(timezone.localtime(space.scheduled_for, dt.UTC), 'D j M Y, H:i')} UTC"


def space_preview(space: Space) -> LinkPreview:
    host = space.host
    image, size = preview_image(host)
    topics = f" · {', '.join(space.topics)}" if space.topics else ""
    state = STATE_WORDS[space.state]
    return LinkPreview(
        title=f"{space.title} · {state}",
        description=shorten(
            f"{state}{_when(space)} on Spaces, hosted by {host.name} (@{host.username}){topics}."
        ),
        url=absolute_url(space_page_url(space)),
        image=image,
        image_size=size,
        author_name=host.name,
        author_url=absolute_url(host.get_absolute_url()),
        embed_url=absolute_url(reverse("rooms:space_embed", args=[space.pk])),
    )
