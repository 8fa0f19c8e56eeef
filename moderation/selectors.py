"""Reads that pages, the admin and rooms share."""

from __future__ import annotations

from django.db.models import Avg, Count, Q, QuerySet

from accounts.models import User

from .models import Feedback, HostBlock, Report


def is_blocked_by_host(*, host_id: int, user_id: int) -> bool:
    """The one question rooms.access asks: has this host blocked this person?"""
    return HostBlock.objects.filter(host_id=host_id, blocked_id=user_id).exists()


def profile_block_state(*, person, viewer) -> dict:
    """accounts.hooks.profile_context: has the viewer blocked this person from their Spaces?"""
    blocked = viewer.is_authenticated and is_blocked_by_host(host_id=viewer.pk, user_id=person.pk)
    return {"blocked": blocked}


def blocks_of(*, host: User) -> QuerySet[HostBlock]:
    return HostBlock.objects.filter(host=host).select_related("blocked").order_by("-created_at")


def reports_by(*, reporter: User) -> QuerySet[Report]:
    return Report.objects.filter(reporter=reporter).select_related("space", "space__host", "account")


def report_counts() -> dict[str, int]:
    return Report.objects.aggregate(
        open=Count("pk", filter=Q(status=Report.Status.OPEN)),
        resolved=Count("pk", filter=Q(status=Report.Status.RESOLVED)),
        dismissed=Count("pk", filter=Q(status=Report.Status.DISMISSED)),
    )


def feedback_by_host() -> QuerySet:
    """Average rating and number of ratings per host, best-rated first."""
    return (
        Feedback.objects.values("space__host_id", "space__host__username")
        .annotate(average=Avg("rating"), ratings=Count("pk"), spaces=Count("space_id", distinct=True))
        .order_by("-average", "-ratings")
    )
