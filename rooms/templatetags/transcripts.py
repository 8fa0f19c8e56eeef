"""`{% transcript_section space %}`: the transcript part of the ended Space page."""

from __future__ import annotations

from django import template

from rooms.captions.selectors import (
    transcript_is_host,
    transcript_lines,
    transcript_of,
    transcript_visible_to,
)
from rooms.captions.webvtt import clock_timestamp
from rooms.models import Space

register = template.Library()

PREVIEW_LINES = 200  # the page shows this many; the full transcript is a tap (or a download) away


@register.inclusion_tag("rooms/transcript_section.html", takes_context=True)
def transcript_section(context, space: Space) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    empty = {"show": False}
    if space.state != Space.State.ENDED:
        return empty
    transcript = transcript_of(space=space)
    if not transcript_visible_to(space=space, user=user, transcript=transcript):
        return empty
    rows = list(transcript_lines(space=space).only("speaker_name", "start", "text")[: PREVIEW_LINES + 1])
    is_host = transcript_is_host(space=space, user=user)
    if not rows and not (is_host and space.captions_enabled):
        return empty
    return {
        "show": True,
        "space": space,
        "is_host": is_host,
        "published": transcript is not None and transcript.is_published,
        "lines": [
            {"at": clock_timestamp(r.start), "speaker": r.speaker_name, "text": r.text}
            for r in rows[:PREVIEW_LINES]
        ],
        "more": len(rows) > PREVIEW_LINES,
    }
