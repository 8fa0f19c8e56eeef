"""Reads that pages, the home page and the websocket consumer share."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Now

from accounts.models import Follow
from rooms.models import Space

from .models import Notification, Reminder, ScheduleRevision

# A scheduled Space stays listed for a while after its time, while the host is running late.
LATE_GRACE = timedelta(hours=1)


def scheduled_spaces(*, viewer) -> QuerySet[Space]:
    """Scheduled Spaces with their host, reminder count and whether `viewer` is reminded."""
    qs = (
        Space.objects.filter(state=Space.State.SCHEDULED)
        .select_related("host")
        .annotate(reminder_count=Count("reminders", distinct=True))
    )
    if getattr(viewer, "is_authenticated", False):
        qs = qs.annotate(viewer_reminded=_reminded(user_id=viewer.pk))
    return qs


def _reminded(*, user_id: int) -> Exists:
    return Exists(Reminder.objects.filter(space=OuterRef("pk"), user_id=user_id))


UPCOMING_SHOWN = 10


def _upcoming_queryset(*, user_id: int) -> QuerySet[Space]:
    followed = Follow.objects.filter(follower_id=user_id, followee=OuterRef("host_id"))
    return (
        scheduled_spaces(viewer=None)
        .annotate(viewer_reminded=_reminded(user_id=user_id))
        # "Now" is the database's clock, so the SQL is the same on every call (and prepared once).
        .filter(Q(Exists(followed)) | Q(host_id=user_id), scheduled_for__gte=Now() - Value(LATE_GRACE))
        .order_by("scheduled_for", "pk")[:UPCOMING_SHOWN]
    )


def upcoming_for(*, viewer) -> list[Space]:
    """Upcoming Spaces of accounts the viewer follows (and their own), soonest first."""
    if not getattr(viewer, "is_authenticated", False):
        return []
    return list(_upcoming_queryset(user_id=viewer.pk))


def scheduled_space(*, space_id: int, viewer) -> Space | None:
    return scheduled_spaces(viewer=viewer).filter(pk=space_id).first()


def reminder_count(*, space: Space) -> int:
    return Reminder.objects.filter(space=space).count()


def schedule_sequence(*, space: Space) -> int:
    return ScheduleRevision.objects.filter(space=space).values_list("sequence", flat=True).first() or 0


def unread_count(*, user) -> int:
    """The bell's count, counted now."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()


def notifications_for(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")
