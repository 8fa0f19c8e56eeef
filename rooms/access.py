"""Who may enter a Space: the single place that answers it.

Pages, the websocket and the join service all ask ``entry_refusal``. Features that restrict entry
(tickets, blocking) add their check here, so no door forgets one.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Value

from moderation.selectors import blocked_by_host_exists
from spaces_project.prepared import PreparedQuery
from ticketing.selectors import ticket_access_expression

from .models import Participant, Space

FACTS = ("entry_removed", "entry_blocked", "entry_ticket")


def with_entry_facts(queryset: QuerySet[Space], *, user) -> QuerySet[Space]:
    """Answer entry_refusal's questions about `user` in one query: removed from the Space, blocked
    by its host, in by its tickets. A page adds them to the Space's own query; the facts are
    tagged with the user they are about, so they are never read for anyone else."""
    if not getattr(user, "is_authenticated", False):
        return queryset
    return _with_entry_facts_of(queryset, user_id=user.pk)


def _with_entry_facts_of(queryset: QuerySet[Space], *, user_id: int) -> QuerySet[Space]:
    removed = Participant.objects.filter(space=OuterRef("pk"), user_id=user_id, removed_at__isnull=False)
    return queryset.annotate(
        entry_facts_user=Value(user_id),
        entry_removed=Exists(removed),
        entry_blocked=blocked_by_host_exists(user_id=user_id),
        entry_ticket=ticket_access_expression(user_id=user_id),
    )


# The Space page's query — the Space, its host, its ticket settings and the viewer's entry facts —
# compiled once per process (spaces_project/prepared.py): building it is most of the page's cost.
def _space_page(space_id: int) -> QuerySet[Space]:
    return Space.objects.select_related("host", "ticket_settings").filter(pk=space_id)


_space_page_query = PreparedQuery(
    lambda space_id, user_id: _with_entry_facts_of(_space_page(space_id), user_id=user_id),
    "space_id",
    "user_id",
)
_space_page_query_signed_out = PreparedQuery(_space_page, "space_id")


def space_page_query(*, space_id: int, user_id: int) -> tuple[PreparedQuery, dict[str, int]]:
    """What ``space_for_page`` asks for a signed-in viewer, for asking it with their user
    (accounts/middleware.py)."""
    return _space_page_query, {"space_id": space_id, "user_id": user_id}


def space_for_page(*, space_id: int, user) -> Space | None:
    """The Space with everything its page asks, and for a signed-in viewer their entry facts."""
    if not getattr(user, "is_authenticated", False):
        return _space_page_query_signed_out.first(space_id=space_id)
    return _space_page_query.first(space_id=space_id, user_id=user.pk)


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
    removed, blocked, ticket = _entry_facts(space=space, user=user)
    if removed:
        return "You were removed from this Space, so you can't rejoin it."
    if blocked:
        return "The host has blocked you from their Spaces, so you can't join this one."
    if not ticket:
        return "This is a ticketed Space. Buy a ticket to listen in."
    return None


def _entry_facts(*, space: Space, user) -> tuple[bool, bool, bool]:
    if getattr(space, "entry_facts_user", None) == user.pk:  # the page's query answered already
        return tuple(getattr(space, name) for name in FACTS)
    return with_entry_facts(Space.objects.filter(pk=space.pk), user=user).values_list(*FACTS).get()
