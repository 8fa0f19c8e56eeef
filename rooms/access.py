"""Who may enter a Space: the single place that answers it.

Pages, the websocket and the join service all ask ``entry_refusal``. Features that restrict entry
(tickets, blocking) add their check here, so no door forgets one.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Value

from moderation.selectors import blocked_by_host_exists, is_blocked_by_host
from ticketing.selectors import has_ticket_access, ticket_access_expression

from .models import Participant, Space


def with_entry_facts(queryset: QuerySet[Space], *, user) -> QuerySet[Space]:
    """Answer entry_refusal's questions about `user` inside the Space's own query (pages load the
    Space anyway): removed from it, blocked by its host, in by its tickets. The facts are tagged
    with the user they are about, so they are never read for anyone else."""
    if not getattr(user, "is_authenticated", False):
        return queryset
    removed = Participant.objects.filter(space=OuterRef("pk"), user_id=user.pk, removed_at__isnull=False)
    return queryset.annotate(
        entry_facts_user=Value(user.pk),
        entry_removed=Exists(removed),
        entry_blocked=blocked_by_host_exists(user_id=user.pk),
        entry_ticket=ticket_access_expression(user_id=user.pk),
    )


def entry_refusal(*, space: Space, user) -> str | None:
    """Why `user` may not enter `space` now, in words for them; None when they may."""
    if not getattr(user, "is_authenticated", False):
        return "Sign in to join this Space."
    if user.is_suspended or not user.is_active:
        return "Your account is suspended, so you can't join Spaces."
    if space.state in (Space.State.ENDED, Space.State.CANCELLED):
        return "This Space has ended."
    if space.state == Space.State.SCHEDULED:
        return "This Space hasn't started yet. Set a reminder and we'll tell you when it does."
    known = getattr(space, "entry_facts_user", None) == user.pk  # with_entry_facts() answered already
    if space.entry_removed if known else _was_removed(space=space, user=user):
        return "You were removed from this Space, so you can't rejoin it."
    if space.entry_blocked if known else is_blocked_by_host(host_id=space.host_id, user_id=user.pk):
        return "The host has blocked you from their Spaces, so you can't join this one."
    if not (space.entry_ticket if known else has_ticket_access(space=space, user=user)):
        return "This is a ticketed Space. Buy a ticket to listen in."
    return None


def _was_removed(*, space: Space, user) -> bool:
    return Participant.objects.filter(space=space, user=user, removed_at__isnull=False).exists()
