from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.services import hosting_eligibility
from rooms.selectors import home_sections, upcoming_for

from .context_processors import THEME_COOKIE, THEMES


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


@require_POST
def theme_set(request: HttpRequest) -> HttpResponse:
    """Remember a colour theme ("light", "dark", or anything else for the system's) in a cookie the
    pages read, then go back. static/js/theme.js does the same without a reload."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "/"
    response = redirect(back)
    chosen = request.POST.get("theme", "")
    if chosen in THEMES:
        response.set_cookie(THEME_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax")
    else:
        response.delete_cookie(THEME_COOKIE, samesite="Lax")
    return response
