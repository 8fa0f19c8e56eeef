"""Reads that pages, the home page and the websocket consumer share."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Notification


def unread_count(*, user) -> int:
    """The bell's count, counted now."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()


def notifications_for(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")
