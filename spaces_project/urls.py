from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from .views import healthz, home, oembed, search, theme_set

admin.site.site_header = "Spaces moderation"
admin.site.site_title = "Spaces admin"
admin.site.index_title = "Moderation"

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("theme/", theme_set, name="theme_set"),
    path("search", search, name="search"),
    path("oembed", oembed, name="oembed"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("rooms.urls")),
    path("", include("ticketing.urls")),
    path("", include("notifications.urls")),
    path("", include("moderation.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
