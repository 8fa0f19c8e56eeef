"""Who may enter a Space: the single place that answers it.

Pages, the websocket and the join service all ask ``entry_refusal``. Features that restrict entry
(tickets, blocking) add their check here, so no door forgets one.
"""

from __future__ import annotations

from moderation.selectors import is_blocked_by_host
from ticketing.selectors import has_ticket_access

from .models import Participant, Space


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
    if Participant.objects.filter(space=space, user=user, removed_at__isnull=False).exists():
        return "You were removed from this Space, so you can't rejoin it."
    if is_blocked_by_host(host_id=space.host_id, user_id=user.pk):
        return "The host has blocked you from their Spaces, so you can't join this one."
    if not has_ticket_access(space=space, user=user):
        return "This is a ticketed Space. Buy a ticket to listen in."
    return None
