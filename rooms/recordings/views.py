"""Replay pages and files, the host's recording controls, the capture upload and the podcast feed."""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ..captions.webvtt import clock_timestamp, render_webvtt
from ..models import Recording, Space
from ..services import RoomError
from . import feed, selectors, service

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
STREAM_BLOCK = 64 * 1024
AUDIO_TYPES = {"opus": "audio/ogg", "m4a": "audio/mp4"}


def _replay(request: HttpRequest, space_id: int) -> Recording:
    recording = selectors.replay_of(space_id=space_id)
    if recording is None:
        raise Http404("This Space has no replay.")
    refusal = selectors.replay_refusal(recording=recording, user=request.user)
    if refusal:
        raise PermissionDenied(refusal)
    return recording


def replay_page(request: HttpRequest, space_id: int) -> HttpResponse:
    recording = selectors.replay_of(space_id=space_id)
    if recording is None:
        raise Http404("This Space has no replay.")
    space = recording.space
    refusal = selectors.replay_refusal(recording=recording, user=request.user)
    is_host = request.user.is_authenticated and request.user.pk == space.host_id
    chapters = [] if refusal else selectors.replay_chapters(recording=recording)
    captions = None if refusal else selectors.replay_captions(recording=recording)
    try:
        start = max(0, min(int(request.GET.get("t", "0")), int(recording.duration_seconds)))
    except ValueError:
        start = 0
    context = {
        "space": space,
        "recording": recording,
        "refusal": refusal,
        "is_host": is_host,
        "speakers": selectors.replay_speakers(space=space),
        "chapters": [{**c, "at": clock_timestamp(c["start"])} for c in chapters],
        "has_captions": bool(captions),
        "start": start,
        "duration": clock_timestamp(recording.duration_seconds),
        "share_url": request.build_absolute_uri(reverse("rooms:replay", args=[space.pk])),
        "podcast_public": is_host and selectors.replay_is_public(recording=recording),
    }
    return render(request, "rooms/replay.html", context, status=403 if refusal else 200)


def ranged_response(request: HttpRequest, field, content_type: str) -> HttpResponse:
    """A stored file, whole (200) or the one byte range asked for (206), so players can seek.
    Files go through the storage API, so this works on any backend; nginx or an object store
    can serve them directly in production (README, "Recordings")."""
    size = field.size
    first, last, status = 0, size - 1, 200
    header = request.headers.get("Range", "").strip()
    if header:
        match = RANGE_RE.match(header)
        if match is None or (not match[1] and not match[2]):
            return _unsatisfiable(size)
        if match[1]:
            first = int(match[1])
            last = min(int(match[2]), size - 1) if match[2] else size - 1
        else:
            first = max(0, size - int(match[2]))
        if first >= size or first > last:
            return _unsatisfiable(size)
        status = 206
    length = last - first + 1

    def body():
        with field.storage.open(field.name, "rb") as f:
            f.seek(first)
            left = length
            while left > 0:
                block = f.read(min(STREAM_BLOCK, left))
                if not block:
                    break
                left -= len(block)
                yield block

    response = StreamingHttpResponse(body(), status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response


def _unsatisfiable(size: int) -> HttpResponse:
    response = HttpResponse("That byte range isn't in the file.", status=416, content_type="text/plain")
    response["Content-Range"] = f"bytes */{size}"
    return response


@require_GET
def replay_audio(request: HttpRequest, space_id: int, ext: str) -> HttpResponse:
    if ext not in AUDIO_TYPES:
        raise Http404("Replays are .opus (web) or .m4a (podcast apps).")
    recording = selectors.replay_of(space_id=space_id)
    if recording is None:
        raise Http404("This Space has no replay.")
    refusal = selectors.replay_refusal(recording=recording, user=request.user)
    if refusal:
        return HttpResponseForbidden(refusal, content_type="text/plain")
    field = recording.web_audio if ext == "opus" else recording.podcast_audio
    response = ranged_response(request, field, AUDIO_TYPES[ext])
    public = selectors.replay_is_public(recording=recording)
    response["Cache-Control"] = "public, max-age=3600" if public else "private, max-age=3600"
    return response


@require_GET
def replay_captions(request: HttpRequest, space_id: int) -> HttpResponse:
    recording = _replay(request, space_id)
    lines = selectors.replay_captions(recording=recording)
    if lines is None:
        raise Http404("The host deleted this Space's transcript.")
    return HttpResponse(render_webvtt(lines), content_type="text/vtt; charset=utf-8")


@require_GET
def replay_chapters(request: HttpRequest, space_id: int) -> JsonResponse:
    """Podcasting 2.0's JSON chapters format."""
    recording = _replay(request, space_id)
    chapters = [
        {"startTime": c["start"], "title": c["name"]} for c in selectors.replay_chapters(recording=recording)
    ]
    response = JsonResponse({"version": "1.2.0", "chapters": chapters})
    response["Content-Type"] = "application/json+chapters"
    return response


@require_POST
@csrf_exempt  # counts a play, nothing more; a forged count is harmless and the player sends no token
def replay_played(request: HttpRequest, space_id: int) -> HttpResponse:
    recording = _replay(request, space_id)
    service.replay_played(recording=recording)
    return HttpResponse(status=204)


def _host_space(request: HttpRequest, space_id: int) -> Space:
    return get_object_or_404(Space, pk=space_id)


@login_required
@require_POST
def recording_delete(request: HttpRequest, space_id: int) -> HttpResponse:
    space = _host_space(request, space_id)
    try:
        service.recording_delete(space=space, by=request.user)
    except RoomError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The recording is deleted: its files are gone and nobody can play it.")
    return redirect(
        space.get_absolute_url()
        if space.state != Space.State.SCHEDULED
        else reverse("rooms:scheduled_space", args=[space.pk])
    )


@login_required
@require_POST
def recording_podcast(request: HttpRequest, space_id: int) -> HttpResponse:
    space = _host_space(request, space_id)
    on = request.POST.get("on") == "1"
    try:
        service.recording_podcast_set(space=space, by=request.user, on=on)
    except RoomError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Added to your podcast." if on else "Taken out of your podcast.")
    return redirect("rooms:replay", space_id=space.pk)


@login_required
@require_POST
def recording_toggle(request: HttpRequest, space_id: int) -> HttpResponse:
    """Before going live: the scheduled Space's page turns recording on or off."""
    space = _host_space(request, space_id)
    on = request.POST.get("on") == "1"
    try:
        service.recording_toggle(space=space, by=request.user, on=on)
    except RoomError as exc:
        messages.error(request, exc.message)
    next_url = (
        reverse("rooms:scheduled_space", args=[space.pk])
        if space.state == Space.State.SCHEDULED
        else space.get_absolute_url()
    )
    return redirect(next_url)


@login_required
@require_POST
def recording_chunk(request: HttpRequest, space_id: int, session: str, seq: int) -> JsonResponse:
    """The host's browser uploads one numbered chunk of its capture (the raw body)."""
    space = _host_space(request, space_id)
    data = request.body
    try:
        service.recording_chunk_save(space=space, by=request.user, session=session, seq=seq, data=data)
    except PermissionDenied as exc:
        return JsonResponse({"error": "forbidden", "message": str(exc)}, status=403)
    except RoomError as exc:
        status = 413 if exc.code == "too_large" else 409 if exc.code == "not_recording" else 400
        return JsonResponse({"error": exc.code, "message": exc.message}, status=status)
    return JsonResponse({"ok": True, "seq": seq})


@require_GET
def podcast_feed(request: HttpRequest, username: str) -> HttpResponse:
    host = get_object_or_404(get_user_model(), username__iexact=username, is_active=True)
    xml = feed.podcast_rss(request=request, host=host, items=selectors.podcast_items(host=host))
    return HttpResponse(xml, content_type="application/rss+xml; charset=utf-8")
