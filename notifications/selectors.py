"""Reads that pages, the home page and the websocket consumer share."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Now

from accounts.models import Follow
from rooms.models import Space
from spaces_project.prepared import PreparedQuery

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
        # "Now" is the database's clock, so the SQL is the same on every call.
        .filter(Q(Exists(followed)) | Q(host_id=user_id), scheduled_for__gte=Now() - Value(LATE_GRACE))
        .order_by("scheduled_for", "pk")[:UPCOMING_SHOWN]
    )


# On every signed-in home page, so compiled once per process: spaces_project/prepared.py.
_upcoming = PreparedQuery(_upcoming_queryset, "user_id")


def upcoming_query(*, user_id: int) -> tuple[PreparedQuery, dict[str, int]]:
    """What ``upcoming_for`` asks, for asking it with the signed-in user (accounts/middleware.py)."""
    return _upcoming, {"user_id": user_id}


def upcoming_for(*, viewer) -> list[Space]:
    """Upcoming Spaces of accounts the viewer follows (and their own), soonest first."""
    if not getattr(viewer, "is_authenticated", False):
        return []
    return _upcoming.all(user_id=viewer.pk)


def scheduled_space(*, space_id: int, viewer) -> Space | None:
    return scheduled_spaces(viewer=viewer).filter(pk=space_id).first()


def reminder_count(*, space: Space) -> int:
    return Reminder.objects.filter(space=space).count()


def schedule_sequence(*, space: Space) -> int:
    return ScheduleRevision.objects.filter(space=space).values_list("sequence", flat=True).first() or 0


def _unread_counted(user_id) -> QuerySet:
    """The number of `user_id`'s unread notifications, as a one-value queryset (no row for none)."""
    return (
        Notification.objects.filter(user_id=user_id, read_at__isnull=True)
        .values("user_id")
        .annotate(unread=Count("pk"))
        .values_list("unread", flat=True)
    )


_unread_count = PreparedQuery(_unread_counted, "user_id")


def unread_count(*, user) -> int:
    """Counted now (the websocket asks after every change)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return _unread_count.first(user_id=user.pk) or 0


def unread_expression() -> Coalesce:
    """The unread count as an expression over a User queryset: accounts/backends.py reads it with
    the signed-in user, so the bell on every page costs no query of its own."""
    return Coalesce(Subquery(_unread_counted(OuterRef("pk"))), 0)


def unread_for_page(*, user) -> int:
    """The bell's count: read with the user when it was (and nothing marked read since), else counted."""
    if not getattr(user, "is_authenticated", False):
        return 0
    unread = getattr(user, "unread_notifications", None)
    return unread if unread is not None else unread_count(user=user)


def notifications_for(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")
