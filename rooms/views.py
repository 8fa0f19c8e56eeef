"""Pages of a Space. The live part of the Space page is driven by static/js/space.js over the websocket."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.selectors import is_moderator
from accounts.services import hosting_eligibility

from . import services
from .access import entry_refusal, space_for_page
from .audio import audio_config
from .forms import SpaceForm
from .hooks import space_page_extra
from .models import Recording, Space
from .previews import space_preview
from .selectors import hosted_spaces_with_summaries


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
    if space.state != Space.State.LIVE or not request.user.is_authenticated:
        return render(request, "rooms/space_closed.html", context)
    refusal = entry_refusal(space=space, user=request.user)
    if refusal:
        return render(request, "rooms/space_closed.html", {**context, "refusal": refusal}, status=403)
    feedback_url = reverse("moderation:feedback", args=[space.pk])
    context["config"] = {
        "space_id": space.pk,
        "user_id": request.user.pk,
        "ws_path": f"/ws/spaces/{space.pk}/",
        # Leaving asks "How was the audio?"; the host has nobody to rate but themselves.
        "leave_url": reverse("home") if request.user.pk == space.host_id else feedback_url,
        "audio": audio_config(space=space, user=request.user),
        "recording": {
            "chunks_url": reverse("rooms:recording_chunk", args=[space.pk, "SESSION", 0]).rsplit(
                "/SESSION/", 1
            )[0],
            "chunk_ms": settings.SPACES_RECORDING_CHUNK_SECONDS * 1000,
        },
    }
    context.update(feedback_url=feedback_url, is_host=request.user.pk == space.host_id)
    return render(request, "rooms/space.html", context)


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
