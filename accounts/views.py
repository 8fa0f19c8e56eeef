from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import selectors, services
from .forms import ProfileForm
from .hooks import profile_extra
from .models import User
from .previews import profile_preview

PAGE_SIZE = 30


def profile(request: HttpRequest, username: str) -> HttpResponse:
    person = selectors.user_with_follow_state(username=username, viewer=request.user).first()
    if person is None:
        raise Http404("No such account")
    context = {
        "person": person,
        "preview": profile_preview(person),
        **profile_extra(person=person, viewer=request.user),
    }
    return render(request, "accounts/profile.html", context)


def _follow_response(request: HttpRequest, person: User) -> HttpResponse:
    person.refresh_from_db(fields=["follower_count", "following_count"])
    person.viewer_follows = selectors.is_following(follower=request.user, followee=person)
    person.viewer_email_on_live = selectors.email_on_live(follower=request.user, followee=person)
    if request.headers.get("HX-Request"):
        return render(request, "accounts/_follow_button.html", {"person": person})
    return redirect(person)


@login_required
@require_POST
def follow(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(User, username__iexact=username, is_active=True)
    try:
        services.follow_create(follower=request.user, followee=person)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return _follow_response(request, person)


@login_required
@require_POST
def unfollow(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(User, username__iexact=username)
    services.follow_delete(follower=request.user, followee=person)
    return _follow_response(request, person)


@login_required
@require_POST
def live_email(request: HttpRequest, username: str) -> HttpResponse:
    """The profile's "Notify me by email when … goes live" switch (only shown to followers)."""
    person = get_object_or_404(User, username__iexact=username)
    on = request.POST.get("on") == "1"
    changed = services.follow_email_on_live_set(follower=request.user, followee=person, on=on)
    if on and not changed and not selectors.is_following(follower=request.user, followee=person):
        messages.error(request, f"Follow {person.name} first, then you can ask for emails when they go live.")
    return _follow_response(request, person)


def _people_page(request: HttpRequest, username: str, which: str) -> HttpResponse:
    person = get_object_or_404(User, username__iexact=username)
    qs = selectors.followers_of(user=person) if which == "followers" else selectors.following_of(user=person)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/people.html", {"person": person, "page": page, "which": which})


def followers(request: HttpRequest, username: str) -> HttpResponse:
    return _people_page(request, username, "followers")


def following(request: HttpRequest, username: str) -> HttpResponse:
    return _people_page(request, username, "following")


@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES)
        if form.is_valid():
            services.profile_update(
                user=user,
                display_name=form.cleaned_data["display_name"],
                bio=form.cleaned_data["bio"],
                time_zone=form.cleaned_data["time_zone"],
                date_of_birth=form.cleaned_data["date_of_birth"],
                avatar_crops=form.cleaned_data["avatar"],
            )
            messages.success(request, "Profile saved.")
            return redirect(user)
    else:
        form = ProfileForm(
            initial={
                "display_name": user.display_name,
                "bio": user.bio,
                "time_zone": user.time_zone,
                "date_of_birth": user.date_of_birth,
            }
        )
    return render(request, "accounts/profile_edit.html", {"form": form})
