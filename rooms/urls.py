from django.urls import path

from . import views

app_name = "rooms"
urlpatterns = [
    path("spaces/new/", views.space_new, name="space_new"),
    path("spaces/<int:space_id>/", views.space_detail, name="space"),
]
