from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts.services import hosting_eligibility
from rooms.selectors import home_sections, upcoming_for


def home(request: HttpRequest) -> HttpResponse:
    """The timeline: it belongs to no one app, so the project puts together what each contributes."""
    context: dict = {}
    if request.user.is_authenticated:
        context["eligibility"] = hosting_eligibility(user=request.user)
    context.update(home_sections(viewer=request.user))
    context["upcoming"] = upcoming_for(viewer=request.user)
    return render(request, "home.html", context)


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers: the process answers. It touches no database on purpose,
    which also makes it the floor the HTTP benchmark compares real pages against."""
    return HttpResponse("ok\n", content_type="text/plain")
