from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts.rules import SEARCH_QUERY_MAX_CHARS
from accounts.selectors import search_people, search_typo_threshold, who_to_follow
from accounts.services import hosting_eligibility
from rooms.selectors import home_sections, search_spaces, upcoming_for


def home(request: HttpRequest) -> HttpResponse:
    """The timeline: it belongs to no one app, so the project puts together what each contributes."""
    context: dict = {}
    if request.user.is_authenticated:
        context["eligibility"] = hosting_eligibility(user=request.user)
        context["who_to_follow"] = who_to_follow(viewer=request.user)
    context.update(home_sections(viewer=request.user))
    context["upcoming"] = upcoming_for(viewer=request.user)
    return render(request, "home.html", context)


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers: the process answers. It touches no database on purpose,
    which also makes it the floor the HTTP benchmark compares real pages against."""
    return HttpResponse("ok\n", content_type="text/plain")


def search(request: HttpRequest) -> HttpResponse:
    """People and Spaces matching `q`. It spans accounts and rooms, so it lives with the wiring."""
    query = " ".join(request.GET.get("q", "").split())
    context: dict = {
        "query": query,
        "people": [],
        "spaces": [],
        "error": "",
        "max_chars": SEARCH_QUERY_MAX_CHARS,
    }
    status = 200
    if len(query) > SEARCH_QUERY_MAX_CHARS:
        context["error"] = f"That search is too long. Use at most {SEARCH_QUERY_MAX_CHARS} characters."
        status = 400
    elif query:
        with transaction.atomic():
            search_typo_threshold()
            context["people"] = search_people(query=query)
            context["spaces"] = search_spaces(query=query)
    return render(request, "search.html", context, status=status)
