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
from .middleware import asks_with_user
from .models import User

PAGE_SIZE = 30


def _upcoming_query(*, user_id: int):
    from notifications.selectors import upcoming_query  # notifications builds on accounts

    return upcoming_query(user_id=user_id)


# The home page's one query of its own (upcoming Spaces) comes with the signed-in user's.
@asks_with_user(_upcoming_query)
def home(request: HttpRequest) -> HttpResponse:
    context: dict = {}
    if request.user.is_authenticated:
        context["eligibility"] = services.hosting_eligibility(user=request.user)
    # Rooms contributes the live bar, discovery and upcoming lists.
    from notifications.selectors import upcoming_for
    from rooms.selectors import home_sections

    context.update(home_sections(viewer=request.user))
    context["upcoming"] = upcoming_for(viewer=request.user)
    return render(request, "home.html", context)


def profile(request: HttpRequest, username: str) -> HttpResponse:
    person = selectors.user_with_follow_state(username=username, viewer=request.user).first()
    if person is None:
        raise Http404("No such account")
    from moderation.selectors import is_blocked_by_host

    blocked = request.user.is_authenticated and is_blocked_by_host(host_id=request.user.pk, user_id=person.pk)
    return render(request, "accounts/profile.html", {"person": person, "blocked": blocked})


def _follow_response(request: HttpRequest, person: User) -> HttpResponse:
    person.refresh_from_db(fields=["follower_count", "following_count"])
    person.viewer_follows = selectors.is_following(follower=request.user, followee=person)
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
                avatar_crops=form.cleaned_data["avatar"],
            )
            messages.success(request, "Profile saved.")
            return redirect(user)
    else:
        form = ProfileForm(
            initial={"display_name": user.display_name, "bio": user.bio, "time_zone": user.time_zone}
        )
    return render(request, "accounts/profile_edit.html", {"form": form})
