from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.previews import LinkPreview, profile_preview
from accounts.rules import SEARCH_QUERY_MAX_CHARS
from accounts.selectors import person_by_handle, search_people, search_typo_threshold, who_to_follow
from accounts.services import hosting_eligibility
from rooms.access import space_for_page
from rooms.previews import space_preview
from rooms.selectors import home_sections, search_spaces, upcoming_for

from .context_processors import THEME_COOKIE, THEMES


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


def search(request: HttpRequest) -> HttpResponse:
    """People and Spaces matching `q`. It spans accounts and rooms, so it lives with the wiring."""
    # Control characters (a NUL, which PostgreSQL refuses in text) are dropped, spaces squeezed.
    query = " ".join(
        "".join(ch for ch in request.GET.get("q", "") if ch.isprintable() or ch.isspace()).split()
    )
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


# How long a consumer may keep an oEmbed answer (seconds): a Space's state changes, so not long.
OEMBED_CACHE_AGE = 300
# The embedded player's size in the oEmbed html (pixels).
EMBED_WIDTH, EMBED_HEIGHT = 400, 210


def link_preview_for(url: str) -> LinkPreview | None:
    """The preview of a link to a Space or a profile on this site (SITE_URL's host); None for
    anything else: another site's link, another page, or nothing there."""
    if not url.isprintable():  # a NUL or other control character: no page of ours has one
        return None
    parts, site = urlsplit(url), urlsplit(settings.SITE_URL)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != site.netloc.lower():
        return None
    try:
        match = resolve(parts.path)
    except Resolver404:
        return None
    if match.view_name == "profile":
        person = person_by_handle(username=match.kwargs["username"])
        return profile_preview(person) if person else None
    if match.view_name in ("rooms:space", "rooms:scheduled_space"):
        space = space_for_page(space_id=match.kwargs["space_id"])
        return space_preview(space) if space else None
    return None


@require_GET
def oembed(request: HttpRequest) -> HttpResponse:
    """oEmbed (type "link") for links to Spaces and profiles: what a site shows when someone posts one."""
    if request.GET.get("format", "json") != "json":
        return JsonResponse({"error": "Only format=json is offered."}, status=501)
    url = request.GET.get("url", "").strip()
    if not url:
        return JsonResponse({"error": "Give the link to preview as ?url=…"}, status=400)
    preview = link_preview_for(url)
    if preview is None:
        return JsonResponse(
            {"error": f"That is not a link to a Space or a profile on {settings.SITE_URL}."}, status=404
        )
    answer = {}
    if preview.embed_url:
        # A Space: the player, to listen from the page that embeds the link.
        answer = {
            "type": "rich",
            "width": EMBED_WIDTH,
            "height": EMBED_HEIGHT,
            "html": format_html(
                '<iframe src="{}" width="{}" height="{}" title="{}" style="border:0;border-radius:12px" '
                'allow="autoplay" loading="lazy"></iframe>',
                preview.embed_url,
                EMBED_WIDTH,
                EMBED_HEIGHT,
                preview.title,
            ),
        }
    return JsonResponse(
        {
            "version": "1.0",
            "type": "link",
            "title": preview.title,
            "author_name": preview.author_name,
            "author_url": preview.author_url,
            "provider_name": "Spaces",
            "provider_url": settings.SITE_URL + "/",
            "cache_age": OEMBED_CACHE_AGE,
            "thumbnail_url": preview.image,
            "thumbnail_width": preview.image_size,
            "thumbnail_height": preview.image_size,
            **answer,
        }
    )
