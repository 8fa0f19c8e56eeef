"""Reads that pages, the home page and the websocket consumer share."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from .models import Notification


def unread_key(user_id: int) -> str:
    return f"notifications:unread:{user_id}"


def unread_count(*, user) -> int:
    """The bell's count on a page: kept in the cache until a notification arrives or is read
    (`unread_changed`). The badge on an open page is kept live by the websocket, not by this."""
    if not getattr(user, "is_authenticated", False):
        return 0
    seconds = settings.SPACES_VIEWER_CACHE_SECONDS
    if seconds <= 0:
        return _unread(user.pk)
    return cache.get_or_set(unread_key(user.pk), lambda: _unread(user.pk), seconds)


def _unread(user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()


def notifications_for(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")


# A person with the bell's socket open is marked here (refreshed while it stays open), so a large
# fan-out can tell the people who are looking first. With the locmem cache of the embedded default
# a worker process cannot see these marks; the fan-out then simply goes in id order.
ONLINE_SECONDS = 90


def online_key(user_id: int) -> str:
    return f"notifications:online:{user_id}"


def online_among(*, user_ids: list[int]) -> set[int]:
    """Which of `user_ids` have a page open (as far as the shared cache knows)."""
    found: set[int] = set()
    for i in range(0, len(user_ids), 1000):
        marks = cache.get_many([online_key(pk) for pk in user_ids[i : i + 1000]])
        found.update(int(key.rsplit(":", 1)[1]) for key in marks)
    return found
