"""Pages of a Space. The live part of the Space page is driven by static/js/space.js over the websocket."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt

from accounts.previews import absolute_url
from accounts.selectors import is_moderator
from accounts.services import hosting_eligibility

from . import services
from .access import entry_refusal, guest_refusal, space_for_page
from .audio import audio_config
from .forms import SpaceForm
from .guests import GUEST_COOKIE, guest_key_from_cookie, guest_remember
from .hooks import space_page_extra
from .models import Recording, Space
from .previews import space_page_url, space_preview
from .selectors import audience_count, hosted_spaces_with_summaries


@login_required
def space_new(request: HttpRequest) -> HttpResponse:
    eligibility = hosting_eligibility(user=request.user)
    if not eligibility.allowed:
        return render(request, "rooms/space_new.html", {"eligibility": eligibility}, status=403)
    form = SpaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            space = services.space_create(
                host=request.user,
                title=form.cleaned_data["title"],
                topics=form.cleaned_data["topics"],
                speak_policy=form.cleaned_data["speak_policy"],
                captions_enabled=form.cleaned_data["captions_enabled"],
                signed_in_only=form.cleaned_data["signed_in_only"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(space)
    context = {
        "eligibility": eligibility,
        "form": form,
        "schedule_url": reverse("rooms:schedule_new"),
        # Already live: say where, with a way back to it, rather than only refusing a second one.
        "live_space": Space.objects.filter(host=request.user, state=Space.State.LIVE).first(),
    }
    return render(request, "rooms/space_new.html", context)


def space_detail(request: HttpRequest, space_id: int) -> HttpResponse:
    space = space_for_page(space_id=space_id)
    if space is None:
        raise Http404("No such Space.")
    if space.state == Space.State.SCHEDULED:
        from .schedule_views import scheduled_space_page

        return scheduled_space_page(request, space)
    context = {
        "space": space,
        "preview": space_preview(space),
        **space_page_extra(space=space, viewer=request.user),
    }
    if space.state == Space.State.ENDED:
        context["replay_ready"] = Recording.objects.filter(space=space, state=Recording.State.READY).exists()
    if space.state != Space.State.LIVE:
        return render(request, "rooms/space_closed.html", context)
    refusal = _listen_refusal(request, space)
    if refusal:
        return render(request, "rooms/space_closed.html", {**context, "refusal": refusal}, status=403)
    guest = not request.user.is_authenticated
    feedback_url = None if guest else reverse("moderation:feedback", args=[space.pk])
    context["config"] = _live_config(request, space, leave_url=feedback_url)
    context.update(feedback_url=feedback_url, is_host=request.user.pk == space.host_id, guest=guest)
    response = render(request, "rooms/space.html", context)
    if guest:
        guest_remember(request, response)
    return response


def _listen_refusal(request: HttpRequest, space: Space) -> str | None:
    if request.user.is_authenticated:
        return entry_refusal(space=space, user=request.user)
    return guest_refusal(space=space)


def _live_config(request: HttpRequest, space: Space, *, leave_url: str | None) -> dict:
    """What space.js and embed.js start from (``#space-config``)."""
    user = request.user
    return {
        "space_id": space.pk,
        "user_id": user.pk,  # None for a guest
        "guest": not user.is_authenticated,
        "ws_path": space.socket_path,
        # Leaving asks "How was the audio?"; the host has nobody to rate but themselves (nor a guest).
        "leave_url": reverse("home") if user.pk == space.host_id or not leave_url else leave_url,
        "audio": audio_config(
            space=space, user=user, guest_key=guest_key_from_cookie(request.COOKIES.get(GUEST_COOKIE)) or ""
        ),
        "recording": {
            "chunks_url": reverse("rooms:recording_chunk", args=[space.pk, "SESSION", 0]).rsplit(
                "/SESSION/", 1
            )[0],
            "chunk_ms": settings.SPACES_RECORDING_CHUNK_SECONDS * 1000,
        },
    }


@xframe_options_exempt
def space_embed(request: HttpRequest, space_id: int) -> HttpResponse:
    """The embeddable player: a compact listen-live card a blog can put in an iframe (the only page
    that may be framed, by SPACES_EMBED_FRAME_ANCESTORS). Guest rules apply; a signed-in visitor
    listens as themselves."""
    space = space_for_page(space_id=space_id)
    if space is None:
        raise Http404("No such Space.")
    context: dict = {"space": space, "page_url": absolute_url(space_page_url(space))}
    status = 200
    if space.state == Space.State.LIVE:
        context["refusal"] = _listen_refusal(request, space)
        if context["refusal"]:
            status = 403
        else:
            context["config"] = _live_config(request, space, leave_url=None)
            context["listeners"] = audience_count(space_id=space.pk)[0]
    response = render(request, "rooms/embed.html", context, status=status)
    response["Content-Security-Policy"] = f"frame-ancestors {settings.SPACES_EMBED_FRAME_ANCESTORS}"
    if not request.user.is_authenticated:
        guest_remember(request, response)
    return response


def _summary_viewer_may_see(*, space: Space, user) -> bool:
    return user.pk == space.host_id or is_moderator(user=user, perm="rooms.end_space")


@login_required
def space_stats(request: HttpRequest, space_id: int) -> HttpResponse:
    """The host's summary of an ended Space (host and moderators only). With htmx, just the figures
    (the end dialog on the Space page loads them)."""
    space = Space.objects.select_related("host", "summary").filter(pk=space_id).first()
    if space is None or not _summary_viewer_may_see(space=space, user=request.user):
        raise Http404("No such Space.")
    summary = getattr(space, "summary", None)
    if request.headers.get("HX-Request"):
        return render(request, "rooms/_summary.html", {"space": space, "summary": summary})
    return render(request, "rooms/stats.html", {"space": space, "summary": summary})


@login_required
def spaces_hosted(request: HttpRequest) -> HttpResponse:
    """The host's past Spaces, each with its summary figures."""
    spaces = hosted_spaces_with_summaries(host=request.user)
    return render(request, "rooms/hosted.html", {"spaces": spaces})
