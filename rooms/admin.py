"""Moderation of Spaces in the admin: see what is live and end a Space (clients are told and
disconnected, through rooms.services.space_end)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet

from accounts.selectors import is_moderator

from . import services
from .models import Participant, Reminder, Space
from .selectors import listener_count_subquery, presence_cutoff


class ParticipantInline(admin.TabularInline):
    model = Participant
    fields = ("user", "role", "muted", "hand_raised_at", "joined_at", "left_at", "removed_at", "removed_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("role", "joined_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "removed_by")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ("title", "state", "host", "listeners_now", "started_at", "ended_at", "ended_reason")
    list_filter = ("state", "speak_policy", "captions_enabled")
    list_select_related = ("host",)
    search_fields = ("title", "host__username", "host__display_name")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    actions = ("end_spaces",)
    inlines = (ParticipantInline,)
    raw_id_fields = ("host",)
    readonly_fields = (
        "host",
        "state",
        "version",
        "scheduled_for",
        "started_at",
        "ended_at",
        "ended_reason",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request) -> QuerySet[Space]:
        # One subquery per page, not one count per row.
        return (
            super().get_queryset(request).annotate(listeners_now=listener_count_subquery(presence_cutoff()))
        )

    @admin.display(description="listening now", ordering="listeners_now")
    def listeners_now(self, space: Space) -> int:
        return space.listeners_now

    @admin.action(description="End the selected live Spaces now", permissions=["end"])
    def end_spaces(self, request, queryset: QuerySet[Space]) -> None:
        ended, skipped = 0, 0
        for space in queryset.filter(state__in=(Space.State.LIVE, Space.State.SCHEDULED)):
            try:
                services.space_end(space=space, by=request.user)
            except services.RoomError as exc:
                skipped += 1
                self.message_user(request, f"“{space}”: {exc.message}", messages.WARNING)
            else:
                ended += 1
        if ended:
            self.message_user(
                request,
                f"Ended {ended} Space{'s' if ended != 1 else ''}; everyone in them was told.",
                messages.SUCCESS,
            )
        elif not skipped:
            self.message_user(request, "None of the selected Spaces was live or scheduled.", messages.INFO)

    def has_end_permission(self, request) -> bool:
        return is_moderator(user=request.user, perm="rooms.end_space")

    def has_add_permission(self, request) -> bool:
        return False  # Spaces are opened by their hosts


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ("user", "space", "created_at")
    raw_id_fields = ("user", "space")
