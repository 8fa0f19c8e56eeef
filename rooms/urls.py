from django.urls import path

from . import schedule_views, views

app_name = "rooms"
urlpatterns = [
    path("spaces/new/", views.space_new, name="space_new"),
    path("spaces/<int:space_id>/", views.space_detail, name="space"),
]

# Scheduled Spaces and reminders (rooms/schedule_views.py).
urlpatterns += [
    path("spaces/schedule/", schedule_views.schedule_new, name="schedule_new"),
    path("spaces/<int:space_id>/scheduled/", schedule_views.scheduled_space, name="scheduled_space"),
    path("spaces/<int:space_id>/schedule/edit/", schedule_views.schedule_edit, name="schedule_edit"),
    path("spaces/<int:space_id>/schedule/cancel/", schedule_views.schedule_cancel, name="schedule_cancel"),
    path("spaces/<int:space_id>/schedule/start/", schedule_views.schedule_start, name="schedule_start"),
    path("spaces/<int:space_id>/calendar.ics", schedule_views.schedule_calendar, name="schedule_calendar"),
    path("spaces/<int:space_id>/reminder/", schedule_views.reminder_toggle, name="reminder_toggle"),
]
