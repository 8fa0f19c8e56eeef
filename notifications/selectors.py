"""Reads that pages, the home page and the websocket consumer share."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

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
        qs = qs.annotate(viewer_reminded=Exists(Reminder.objects.filter(space=OuterRef("pk"), user=viewer)))
    return qs


def upcoming_for(*, viewer, limit: int = 10) -> list[Space]:
    """Upcoming Spaces of accounts the viewer follows (and their own), soonest first."""
    if not getattr(viewer, "is_authenticated", False):
        return []
    followed = Follow.objects.filter(follower=viewer, followee=OuterRef("host_id"))
    return list(
        scheduled_spaces(viewer=viewer)
        .filter(Q(Exists(followed)) | Q(host=viewer), scheduled_for__gte=timezone.now() - LATE_GRACE)
        .order_by("scheduled_for", "pk")[:limit]
    )


def scheduled_space(*, space_id: int, viewer) -> Space | None:
    return scheduled_spaces(viewer=viewer).filter(pk=space_id).first()


def reminder_count(*, space: Space) -> int:
    return Reminder.objects.filter(space=space).count()


def schedule_sequence(*, space: Space) -> int:
    return ScheduleRevision.objects.filter(space=space).values_list("sequence", flat=True).first() or 0


def unread_count(*, user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_for(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")
