"""Who may enter a Space: the single place that answers it.

Pages, the websocket and the join service all ask ``entry_refusal``. Apps that restrict entry
(ticketing, moderation) register an entry rule in rooms.hooks, so no door forgets one.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from .hooks import entry_rules
from .models import Participant, Space


def space_for_page(*, space_id: int) -> Space | None:
    """The Space with what its page shows of it."""
    return Space.objects.select_related("host").filter(pk=space_id).first()


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
    if Participant.objects.filter(space=space, user_id=user.pk, removed_at__isnull=False).exists():
        return "You were removed from this Space, so you can't rejoin it."
    return entry_rules_refusal(space=space, user=user)


def entry_rules_refusal(*, space: Space, user) -> str | None:
    """The registered rules (tickets, blocks) alone: they gate the live Space and its replay alike.
    `user` may be anonymous; a rule that needs an account refuses one."""
    for rule in entry_rules:
        if not rule.lets_in(space=space, user=user):
            return rule.refusal
    return None


GUEST_SIGNED_IN_ONLY = (
    "The host lets only signed-in people listen to this Space. Sign in or sign up to listen."
)


def guest_refusal(*, space: Space) -> str | None:
    """Why someone without an account may not listen to `space` now, in words for them; None when
    they may. A public live Space lets guests in unless the host chose "Only signed-in listeners";
    the apps' entry rules are asked as for an anonymous visitor (a ticketed Space refuses them)."""
    if space.state in (Space.State.ENDED, Space.State.CANCELLED):
        return "This Space has ended."
    if space.state == Space.State.SCHEDULED:
        return "This Space hasn't started yet."
    if space.signed_in_only:
        return GUEST_SIGNED_IN_ONLY
    for rule in entry_rules:
        if not rule.lets_in(space=space, user=AnonymousUser()):
            return rule.refusal
    return None
