from django.urls import path

from . import schedule_views, views

app_name = "rooms"
urlpatterns = [
    path("spaces/new/", views.space_new, name="space_new"),
    path("spaces/<int:space_id>/", views.space_detail, name="space"),
    path("spaces/<int:space_id>/embed/", views.space_embed, name="space_embed"),
    path("spaces/<int:space_id>/stats/", views.space_stats, name="space_stats"),
    path("spaces/hosted/", views.spaces_hosted, name="spaces_hosted"),
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

# Transcripts of captioned Spaces (rooms/captions/views.py).
from .captions import views as caption_views  # noqa: E402

T = "spaces/<int:space_id>/transcript"
urlpatterns += [
    path(f"{T}/", caption_views.transcript_page, name="transcript"),
    path(f"{T}.<str:fmt>", caption_views.transcript_download, name="transcript_download"),
    path(f"{T}/publish/", caption_views.transcript_publish, name="transcript_publish"),
    path(f"{T}/unpublish/", caption_views.transcript_unpublish, name="transcript_unpublish"),
    path(f"{T}/delete/", caption_views.transcript_delete, name="transcript_delete"),
]

# Recordings and replays (rooms/recordings/views.py).
from .recordings import views as recording_views  # noqa: E402

R = "spaces/<int:space_id>/replay"
urlpatterns += [
    path(f"{R}/", recording_views.replay_page, name="replay"),
    path(f"{R}/audio.<str:ext>", recording_views.replay_audio, name="replay_audio"),
    path(f"{R}/captions.vtt", recording_views.replay_captions, name="replay_captions"),
    path(f"{R}/chapters.json", recording_views.replay_chapters, name="replay_chapters"),
    path(f"{R}/played/", recording_views.replay_played, name="replay_played"),
    path("spaces/<int:space_id>/recording/", recording_views.recording_toggle, name="recording_toggle"),
    path(
        "spaces/<int:space_id>/recording/delete/", recording_views.recording_delete, name="recording_delete"
    ),
    path(
        "spaces/<int:space_id>/recording/podcast/",
        recording_views.recording_podcast,
        name="recording_podcast",
    ),
    path(
        "spaces/<int:space_id>/recording/chunks/<str:session>/<int:seq>/",
        recording_views.recording_chunk,
        name="recording_chunk",
    ),
    path("u/<str:username>/podcast.xml", recording_views.podcast_feed, name="podcast_feed"),
]
