"""A host's podcast: RSS 2.0 with the iTunes namespace and Podcasting 2.0's transcript and chapters
tags, built with the standard library's ElementTree so every text is escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from email.utils import format_datetime

from django.http import HttpRequest
from django.urls import reverse

from ..captions.webvtt import clock_timestamp
from ..models import Recording
from .selectors import replay_captions

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
ET.register_namespace("itunes", ITUNES)
ET.register_namespace("podcast", PODCAST)
ET.register_namespace("atom", ATOM)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def podcast_rss(*, request: HttpRequest, host, items: list[Recording]) -> bytes:
    def url(name: str, *args) -> str:
        return request.build_absolute_uri(reverse(name, args=args))

    rss = ET.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", f"{host.name}'s Spaces")
    _sub(channel, "link", request.build_absolute_uri(host.get_absolute_url()))
    _sub(channel, "description", f"Replays of the Spaces {host.name} hosted.")
    _sub(channel, "language", "en")
    _sub(
        channel,
        f"{{{ATOM}}}link",
        href=url("rooms:podcast_feed", host.username),
        rel="self",
        type="application/rss+xml",
    )
    _sub(channel, f"{{{ITUNES}}}author", host.name)
    _sub(channel, f"{{{ITUNES}}}explicit", "false")
    ET.SubElement(channel, f"{{{ITUNES}}}category", {"text": "Society & Culture"})
    if getattr(host, "avatar", None):
        _sub(channel, f"{{{ITUNES}}}image", href=request.build_absolute_uri(host.avatar.url))
    for recording in items:
        space = recording.space
        item = _sub(channel, "item")
        _sub(item, "title", space.title)
        _sub(
            item,
            "description",
            f"A Space hosted by {host.name}" + (f" · {', '.join(space.topics)}" if space.topics else ""),
        )
        _sub(item, "link", url("rooms:replay", space.pk))
        _sub(item, "guid", f"urn:uuid:{recording.guid}", isPermaLink="false")
        _sub(item, "pubDate", format_datetime(space.ended_at or recording.created_at))
        _sub(
            item,
            "enclosure",
            url=url("rooms:replay_audio", space.pk, "m4a"),
            length=str(recording.podcast_size),
            type="audio/mp4",
        )
        _sub(item, f"{{{ITUNES}}}duration", clock_timestamp(recording.duration_seconds))
        _sub(item, f"{{{ITUNES}}}episodeType", "full")
        if replay_captions(recording=recording):
            _sub(
                item, f"{{{PODCAST}}}transcript", url=url("rooms:replay_captions", space.pk), type="text/vtt"
            )
        _sub(
            item,
            f"{{{PODCAST}}}chapters",
            url=url("rooms:replay_chapters", space.pk),
            type="application/json+chapters",
        )
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)
