"""Reads that pages and consumers share."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Space


def live_spaces(*, limit: int = 20) -> QuerySet[Space]:
    return Space.objects.filter(state=Space.State.LIVE).select_related("host").order_by("-started_at")[:limit]


def home_sections(*, viewer) -> dict:
    """Everything the home page shows about Spaces, in a fixed number of queries."""
    return {"discover": list(live_spaces())}
