"""Who may enter a Space: the single place that answers it.

Pages, the websocket and the join service all ask ``entry_refusal``. Apps that restrict entry
(ticketing, moderation) register an entry rule in rooms.hooks, so no door forgets one.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Value

from .hooks import entry_rules
from .models import Participant, Space


def _fact(rule_name: str) -> str:
    return f"entry_lets_in_{rule_name}"


def with_entry_facts(queryset: QuerySet[Space], *, user) -> QuerySet[Space]:
    """Answer entry_refusal's questions about `user` in the Space's own query: removed from the
    Space, and each registered entry rule (rooms.hooks). The facts are tagged with the user they
    are about, so they are never read for anyone else."""
    if not getattr(user, "is_authenticated", False):
        return queryset
    removed = Participant.objects.filter(space=OuterRef("pk"), user_id=user.pk, removed_at__isnull=False)
    return queryset.annotate(
        entry_facts_user=Value(user.pk),
        entry_removed=Exists(removed),
        **{_fact(rule.name): rule.lets_in(user.pk) for rule in entry_rules},
    )


def space_for_page(*, space_id: int, user) -> Space | None:
    """The Space with everything its page asks, and for a signed-in viewer their entry facts."""
    queryset = Space.objects.select_related("host").filter(pk=space_id)
    return with_entry_facts(queryset, user=user).first()


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
    facts = _entry_facts(space=space, user=user)
    if facts["entry_removed"]:
        return "You were removed from this Space, so you can't rejoin it."
    for rule in entry_rules:
        if not facts[_fact(rule.name)]:
            return rule.refusal
    return None


def _entry_facts(*, space: Space, user) -> dict[str, bool]:
    names = ["entry_removed", *(_fact(rule.name) for rule in entry_rules)]
    if getattr(space, "entry_facts_user", None) == user.pk:  # the page's query answered already
        return {name: getattr(space, name) for name in names}
    row = with_entry_facts(Space.objects.filter(pk=space.pk), user=user).values_list(*names).get()
    return dict(zip(names, row, strict=True))
