from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("notifications/", views.inbox, name="inbox"),
    path("notifications/read/", views.mark_all_read, name="mark_all_read"),
    path("notifications/email/", views.email_preference, name="email_preference"),
    path("notifications/email/<str:token>/", views.email_link, name="email_link"),
]
