"""Transcript pages: the host reviews, publishes or deletes a Space's captions; anyone reads a
published one. Downloads are WebVTT (for players and editors) and plain text."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from rooms.models import Space
from rooms.services import RoomError

from . import service
from .selectors import (
    rendered_lines,
    transcript_is_host,
    transcript_lines,
    transcript_of,
    transcript_visible_to,
)
from .webvtt import clock_timestamp, render_plain_text, render_webvtt


def _visible_space(request: HttpRequest, space_id: int):
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    transcript = transcript_of(space=space)
    if not transcript_visible_to(space=space, user=request.user, transcript=transcript):
        raise Http404("No transcript here.")
    return space, transcript


def transcript_page(request: HttpRequest, space_id: int) -> HttpResponse:
    space, transcript = _visible_space(request, space_id)
    lines = [
        {"at": clock_timestamp(line.start), "speaker": line.speaker_name, "text": line.text}
        for line in transcript_lines(space=space).only("speaker_name", "start", "text")
    ]
    context = {
        "space": space,
        "transcript": transcript,
        "lines": lines,
        "is_host": transcript_is_host(space=space, user=request.user),
        "published": transcript is not None and transcript.is_published,
        "ended": space.state == Space.State.ENDED,
    }
    return render(request, "rooms/transcript.html", context)


def transcript_download(request: HttpRequest, space_id: int, fmt: str) -> HttpResponse:
    if fmt not in ("vtt", "txt"):
        raise Http404("Transcripts download as .vtt or .txt.")
    space, _ = _visible_space(request, space_id)
    lines = rendered_lines(space=space)
    if fmt == "vtt":
        body, content_type = render_webvtt(lines), "text/vtt; charset=utf-8"
    else:
        body, content_type = render_plain_text(lines), "text/plain; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    name = slugify(space.title) or "space"
    response["Content-Disposition"] = f'attachment; filename="{name}-{space.pk}-transcript.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _host_action(request: HttpRequest, space_id: int, action, done: str) -> HttpResponse:
    space = get_object_or_404(Space, pk=space_id)
    try:
        action(space=space, by=request.user)
    except RoomError as exc:
        if exc.code == "forbidden":
            return HttpResponse(exc.message, status=403)
        messages.error(request, exc.message)
        return redirect("rooms:transcript", space_id=space.pk)
    messages.success(request, done)
    if action is service.transcript_delete:
        return redirect(space)
    return redirect("rooms:transcript", space_id=space.pk)


@login_required
@require_POST
def transcript_publish(request: HttpRequest, space_id: int) -> HttpResponse:
    return _host_action(
        request, space_id, service.transcript_publish, "Published. Anyone can read it on the Space page."
    )


@login_required
@require_POST
def transcript_unpublish(request: HttpRequest, space_id: int) -> HttpResponse:
    return _host_action(
        request, space_id, service.transcript_unpublish, "Unpublished. Only you can see the transcript now."
    )


@login_required
@require_POST
def transcript_delete(request: HttpRequest, space_id: int) -> HttpResponse:
    return _host_action(request, space_id, service.transcript_delete, "The transcript is deleted.")
