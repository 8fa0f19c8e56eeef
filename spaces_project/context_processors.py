from django.conf import settings


def site(request):
    return {"SITE_NAME": "Spaces", "HOST_MIN_FOLLOWERS": settings.SPACES_HOST_MIN_FOLLOWERS}
