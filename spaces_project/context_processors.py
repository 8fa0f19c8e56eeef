from django.conf import settings

# The colour theme a person chose (the toggle in the top bar); without the cookie the page follows
# the system's prefers-color-scheme.
THEME_COOKIE = "theme"
THEMES = ("light", "dark")


def theme_of(request) -> str:
    chosen = request.COOKIES.get(THEME_COOKIE, "")
    return chosen if chosen in THEMES else ""


def site(request):
    return {
        "SITE_NAME": "Spaces",
        "HOST_MIN_FOLLOWERS": settings.SPACES_HOST_MIN_FOLLOWERS,
        "THEME": theme_of(request),
    }
