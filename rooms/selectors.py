"""Reads that pages and consumers share. Each does its joins up front: a fixed number of queries
however many people are in the room."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Case,
    Count,
    Exists,
    Expression,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Now
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from accounts.models import Follow
from accounts.rules import SEARCH_RESULTS
from accounts.selectors import SearchText, search_matches

from .models import (
    Audience,
    Connection,
    GuestConnection,
    Participant,
    Recording,
    Reminder,
    ScheduleRevision,
    Space,
    Transcript,
)
from .protocol import LISTENERS_SHOWN
from .rules import PROFILE_PAST_SHOWN

ROLE_ORDER = {"host": 0, "cohost": 1, "speaker": 2, "listener": 3}


def presence_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """Connections last seen before this are not counted: their process stopped refreshing them."""
    return (now or timezone.now()) - dt.timedelta(seconds=settings.SPACES_PRESENCE_STALE_SECONDS)


def fresh_connections(*, cutoff: dt.datetime | None = None) -> QuerySet[Connection]:
    return Connection.objects.filter(seen_at__gte=cutoff or presence_cutoff())


def _present(cutoff: dt.datetime) -> Exists:
    return Exists(fresh_connections(cutoff=cutoff).filter(participant=OuterRef("pk")))


def avatar_url(user) -> str:
    image = user.avatar_small or user.avatar
    return image.url if image else ""


def participant_view(participant: Participant, *, present: bool) -> dict[str, Any]:
    user = participant.user
    return {
        "user_id": user.pk,
        "username": user.username,
        "name": user.name,
        "avatar_url": avatar_url(user),
        "role": participant.role,
        "muted": participant.muted,
        "present": present,
    }


def hand_view(participant: Participant) -> dict[str, Any]:
    user = participant.user
    return {
        "user_id": user.pk,
        "username": user.username,
        "name": user.name,
        "avatar_url": avatar_url(user),
        "raised_at": participant.hand_raised_at.isoformat() if participant.hand_raised_at else None,
    }


def space_view(space: Space) -> dict[str, Any]:
    return {
        "id": space.pk,
        "title": space.title,
        "topics": list(space.topics or []),
        "state": space.state,
        "speak_policy": space.speak_policy,
        "captions": space.captions_enabled,
        "recording": space.recording_on,
        "host_id": space.host_id,
        "started_at": space.started_at.isoformat() if space.started_at else None,
        "ended_at": space.ended_at.isoformat() if space.ended_at else None,
    }


def fresh_guest_connections(*, cutoff: dt.datetime | None = None) -> QuerySet[GuestConnection]:
    return GuestConnection.objects.filter(seen_at__gte=cutoff or presence_cutoff())


def guest_count(*, space_id: int, cutoff: dt.datetime | None = None) -> int:
    """Guests (no account) listening, each counted once however many tabs they have open."""
    return (
        fresh_guest_connections(cutoff=cutoff)
        .filter(space_id=space_id)
        .values("guest_key")
        .distinct()
        .count()
    )


def listener_count(*, space_id: int, cutoff: dt.datetime | None = None, guests: int | None = None) -> int:
    """People in the audience with at least one live connection, guests included (pass `guests`
    when the caller has just counted them)."""
    members = (
        fresh_connections(cutoff=cutoff)
        .filter(space_id=space_id, participant__role=Participant.Role.LISTENER, participant__removed_at=None)
        .values("user_id")
        .distinct()
        .count()
    )
    return members + (guest_count(space_id=space_id, cutoff=cutoff) if guests is None else guests)


def audience_count(*, space_id: int) -> tuple[int, int]:
    """(everyone listening, of whom guests) as kept in the Space's ``Audience``: one row read,
    whatever the audience size. Exact but for drift the presence sweep corrects (``listener_count``
    is the exact recount)."""
    row = Audience.objects.filter(space_id=space_id).values_list("listeners", "guests").first()
    if row is None:  # not kept for this Space (it never had a listener through the services)
        guests = guest_count(space_id=space_id)
        return listener_count(space_id=space_id, guests=guests), guests
    listeners, guests = max(row[0], 0), max(row[1], 0)
    return listeners + guests, guests


def may_ask_to_speak(*, space: Space, user_id: int) -> bool:
    """Whether the speak policy lets this person raise a hand (invitations are always allowed)."""
    if space.speak_policy == Space.SpeakPolicy.EVERYONE:
        return True
    if space.speak_policy == Space.SpeakPolicy.FOLLOWED:
        return (
            user_id == space.host_id
            or Follow.objects.filter(follower_id=space.host_id, followee_id=user_id).exists()
        )
    return False


def space_snapshot_shared(*, space_id: int) -> dict[str, Any]:
    """The part of a snapshot every viewer of the Space has alike: the Space, its stage, raised
    hands, invitations and the first LISTENERS_SHOWN listeners. Three queries, whatever the
    audience size. A process's SpaceHub keeps it for the Space's next arrivals until the next
    event that changes it (rooms.consumers), so a join storm reads it about once."""
    space = Space.objects.get(pk=space_id)  # state, version and captions as of now
    cutoff = presence_cutoff()
    people = list(
        Participant.objects.filter(space=space, removed_at=None)
        .filter(
            Q(role__in=Participant.STAGE_ROLES)
            | Q(hand_raised_at__isnull=False)
            | Q(invited_at__isnull=False)
        )
        .select_related("user")
        .annotate(present=_present(cutoff))
    )
    stage = sorted(
        (p for p in people if p.on_stage),
        key=lambda p: (ROLE_ORDER[p.role], p.stage_since or p.joined_at, p.pk),
    )
    hands = sorted(
        (p for p in people if p.hand_raised_at and p.role == Participant.Role.LISTENER),
        key=lambda p: p.hand_raised_at,
    )
    listeners = list(
        Participant.objects.filter(space=space, role=Participant.Role.LISTENER, removed_at=None)
        .filter(_present(cutoff))
        .select_related("user")
        .order_by("joined_at", "pk")[:LISTENERS_SHOWN]
    )
    return {
        "v": space.version,
        "space": space_view(space),
        "stage": [participant_view(p, present=p.present) for p in stage],
        "hands": [hand_view(p) for p in hands],
        "invited": [p.user_id for p in people if p.invited_at],
        "listeners": [participant_view(p, present=True) for p in listeners],
    }


def space_snapshot(
    *, space: Space, viewer, shared: dict[str, Any] | None = None, me: Participant | None = None
) -> dict[str, Any]:
    """The whole state of a Space as one viewer sees it: the websocket's first frame, and what the
    Space page renders from (docs/protocol.md, ``snapshot``). JSON-serialisable. At most five
    queries, whatever the audience size; two when `shared` (``space_snapshot_shared``) is given,
    one when `me` (the viewer's Participant row, just read by the caller) is given too."""
    shared = shared or space_snapshot_shared(space_id=space.pk)
    guest = not getattr(viewer, "is_authenticated", False)
    viewer_id = None if guest else viewer.pk
    if me is None and not guest:
        me = Participant.objects.filter(space_id=space.pk, user_id=viewer_id).first()
    me_role = me.role if me else Participant.Role.LISTENER
    policy = Space(
        pk=space.pk, host_id=shared["space"]["host_id"], speak_policy=shared["space"]["speak_policy"]
    )
    can_raise = (
        me is not None
        and not me.is_removed
        and me_role == Participant.Role.LISTENER
        and may_ask_to_speak(space=policy, user_id=viewer_id)
    )
    count, guests = audience_count(space_id=space.pk)
    return {
        "type": "snapshot",
        "v": shared["v"],
        "space": shared["space"],
        "me": {
            "user_id": viewer_id,
            "guest": guest,
            "role": me_role,
            "muted": me.muted if me else True,
            "hand_raised": bool(me and me.hand_raised_at),
            "invited": bool(me and me.invited_at),
            "can_raise_hand": can_raise,
            "removed": bool(me and me.is_removed),
        },
        "stage": shared["stage"],
        "hands": shared["hands"],
        "invited": shared["invited"],
        "listener_count": count,
        "guest_count": guests,
        "listeners": shared["listeners"],
        "reactions": [],
    }


def listener_count_subquery(cutoff: dt.datetime) -> Expression:
    counts = (
        fresh_connections(cutoff=cutoff)
        .filter(
            space=OuterRef("pk"), participant__role=Participant.Role.LISTENER, participant__removed_at=None
        )
        .order_by()
        .values("space")
        .annotate(n=Count("user", distinct=True))
        .values("n")
    )
    guests = (
        fresh_guest_connections(cutoff=cutoff)
        .filter(space=OuterRef("pk"))
        .order_by()
        .values("space")
        .annotate(n=Count("guest_key", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0)) + Coalesce(
        Subquery(guests, output_field=IntegerField()), Value(0)
    )


def live_spaces(*, limit: int = 20) -> QuerySet[Space]:
    """Live Spaces with their host and `listener_count`, busiest first."""
    return (
        Space.objects.filter(state=Space.State.LIVE)
        .select_related("host")
        .annotate(listener_count=Coalesce(F("audience__listeners") + F("audience__guests"), Value(0)))
        .order_by("-listener_count", "-started_at")[:limit]
    )


@dataclass(frozen=True)
class LiveEntry:
    """One person in the live bar: who, in which Space, and their `<li>` — rendered once for every
    viewer, so a home page joins strings instead of rendering twenty avatars."""

    user_id: int
    space_id: int
    html: str


def _live_stage() -> list[LiveEntry]:
    """Everyone on stage in a live Space, hosts first: the same for every viewer, so it is computed
    and rendered once every few seconds (through the cache) rather than once per home page."""

    def compute() -> list[LiveEntry]:
        rows = (
            Participant.objects.filter(
                space__state=Space.State.LIVE, role__in=Participant.STAGE_ROLES, removed_at=None
            )
            .select_related("user", "space")
            .order_by("space__started_at", "pk")
        )
        return [
            LiveEntry(
                user_id=p.user_id,
                space_id=p.space_id,
                html=render_to_string("rooms/_live_bar_item.html", {"person": p.user, "space": p.space}),
            )
            for p in sorted(rows, key=lambda p: ROLE_ORDER[p.role])
        ]

    return shared_fragment("rooms:live-stage", compute)


def home_cache_clear() -> None:
    """Forget the shared home sections: a Space went live or ended, or its stage changed."""
    cache.delete_many(["rooms:live-stage", "rooms:discover"])


def shared_fragment(key: str, compute: Callable[[], Any]) -> Any:
    """What every viewer sees alike, computed at most once per SPACES_HOME_CACHE_SECONDS through
    Django's cache (shared by all processes with Redis) and forgotten at once by
    `home_cache_clear` when what it shows changes."""
    seconds = settings.SPACES_HOME_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    return cache.get_or_set(key, compute, seconds)


def _followed_on_stage(viewer) -> set[int]:
    """Which of the accounts `viewer` follows are on stage in a live Space now."""
    on_stage = Participant.objects.filter(
        user_id=OuterRef("followee_id"),
        space__state=Space.State.LIVE,
        role__in=Participant.STAGE_ROLES,
        removed_at=None,
    )
    return set(
        Follow.objects.filter(follower_id=viewer.pk)
        .filter(Exists(on_stage))
        .values_list("followee_id", flat=True)
    )


def live_now_for(*, viewer, limit: int = 20) -> list[LiveEntry]:
    """Followed accounts hosting or speaking in a live Space (the purple-ring bar), hosts first,
    each person once. One small indexed query per viewer on top of the shared list."""
    if not getattr(viewer, "is_authenticated", False):
        return []
    stage = _live_stage()
    if not stage:
        return []
    followed = _followed_on_stage(viewer)
    seen: dict[int, LiveEntry] = {}
    for entry in stage:
        if entry.user_id in followed:
            seen.setdefault(entry.user_id, entry)
    return list(seen.values())[:limit]


def discover_spaces(*, limit: int = 20) -> list[Space]:
    """Live Spaces to discover, busiest first."""
    return list(live_spaces(limit=limit))


def _discover_html() -> str:
    """The "Live now" section: the same for every viewer, so rendered once every few seconds (like
    the live bar's list) rather than once per home page."""
    return shared_fragment(
        "rooms:discover", lambda: render_to_string("rooms/_discover.html", {"spaces": discover_spaces()})
    )


def home_sections(*, viewer) -> dict:
    """Everything the home page shows about Spaces, in a fixed number of queries (one, and two more
    each few seconds to refresh what every viewer shares)."""
    live_now = live_now_for(viewer=viewer)
    return {
        "live_now": live_now,
        # Each entry was rendered once for everyone; joined here rather than rendered again.
        "live_now_html": mark_safe("".join(entry.html for entry in live_now)),  # noqa: S308 - our own rendered HTML
        "discover_html": _discover_html(),
    }


# --- scheduled Spaces and reminders ------------------------------------------------

# A scheduled Space stays listed for a while after its time, while the host is running late.
LATE_GRACE = dt.timedelta(hours=1)
UPCOMING_SHOWN = 10


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


# Generations of what an "Upcoming" list is made of: any scheduled Space or reminder, and whom the
# viewer follows. A list is cached under the generations it was read at, so bumping one makes
# every list that read it stale at once (rooms.reminders and the Follow receivers in rooms.apps).
SCHEDULE_GENERATION = "rooms:gen:schedule"


def _follows_generation(user_id: int) -> str:
    return f"rooms:gen:follows:{user_id}"


def upcoming_changed(*, follower_id: int | None = None) -> None:
    """Forget cached "Upcoming" lists: everyone's, or those of one person whose follows changed."""
    key = _follows_generation(follower_id) if follower_id else SCHEDULE_GENERATION
    cache.set(key, uuid.uuid4().hex, None)


def upcoming_for(*, viewer) -> list[Space]:
    """Upcoming Spaces of accounts the viewer follows (and their own), soonest first."""
    if not getattr(viewer, "is_authenticated", False):
        return []
    seconds = settings.SPACES_VIEWER_CACHE_SECONDS
    if seconds <= 0:
        return _upcoming(viewer)
    follows = _follows_generation(viewer.pk)
    generations = cache.get_many([SCHEDULE_GENERATION, follows])
    key = f"rooms:upcoming:{viewer.pk}:{generations.get(SCHEDULE_GENERATION)}:{generations.get(follows)}"
    found = cache.get(key)
    if found is None:
        found = _upcoming(viewer)
        cache.set(key, found, seconds)
    return found


def _upcoming(viewer) -> list[Space]:
    followed = Follow.objects.filter(follower_id=viewer.pk, followee=OuterRef("host_id"))
    return list(
        scheduled_spaces(viewer=None)
        .annotate(viewer_reminded=_reminded(user_id=viewer.pk))
        # "Now" is the database's clock, so the SQL is the same on every call (and prepared once).
        .filter(Q(Exists(followed)) | Q(host_id=viewer.pk), scheduled_for__gte=Now() - Value(LATE_GRACE))
        .order_by("scheduled_for", "pk")[:UPCOMING_SHOWN]
    )


def scheduled_space(*, space_id: int, viewer) -> Space | None:
    return scheduled_spaces(viewer=viewer).filter(pk=space_id).first()


def reminder_count(*, space: Space) -> int:
    return Reminder.objects.filter(space=space).count()


def schedule_sequence(*, space: Space) -> int:
    return ScheduleRevision.objects.filter(space=space).values_list("sequence", flat=True).first() or 0


def hosted_spaces_with_summaries(*, host, limit: int = 100) -> QuerySet[Space]:
    """A host's Spaces that went live and ended, newest first, with their summaries."""
    return (
        Space.objects.filter(host=host, state=Space.State.ENDED)
        .select_related("summary")
        .order_by("-ended_at", "-pk")[:limit]
    )


# --- search ------------------------------------------------------------------------


def search_spaces(*, query: str, limit: int = SEARCH_RESULTS) -> list[Space]:
    """Live and upcoming Spaces whose title or topics contain `query` or, on PostgreSQL, come within
    a typo of it (accounts.selectors.search_matches): exact matches before typo ones, and in each,
    live ones first, then the soonest. Call
    inside a transaction that has run `accounts.selectors.search_typo_threshold()`."""
    live_first = Case(
        When(state=Space.State.LIVE, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return search_matches(
        queryset=Space.objects.filter(
            Q(state=Space.State.LIVE)
            | Q(state=Space.State.SCHEDULED, scheduled_for__gte=Now() - Value(LATE_GRACE))
        )
        .select_related("host")
        .annotate(live_first=live_first),
        query=query,
        text=SearchText("title", Cast("topics", TextField())),
        prefix_field="title",
        order=["live_first", "scheduled_for", "-started_at", "pk"],
        limit=limit,
        # A misspelt topic matches every Space with that topic about equally well; which of them
        # is on now matters more than how close each title is.
        closest_typos_first=False,
    )


# --- profiles ----------------------------------------------------------------------


def profile_spaces(*, person, viewer) -> dict:
    """accounts.hooks.profile_context: the Spaces a person hosts, for their profile. Their live
    Space, their upcoming ones (soonest first, as "Upcoming" on home lists them) and their most
    recent past ones, each past one with `transcript_public` when its transcript is published.
    Two queries, however many Spaces they have hosted."""
    hosted = Space.objects.filter(host_id=person.pk).select_related("host")
    # Live and upcoming in one query: the live one (a host has one at most) sorts first.
    current = list(
        hosted.filter(
            Q(state=Space.State.LIVE)
            | Q(state=Space.State.SCHEDULED, scheduled_for__gte=Now() - Value(LATE_GRACE))
        )
        .annotate(live_first=Case(When(state=Space.State.LIVE, then=Value(0)), default=Value(1)))
        .order_by("live_first", "scheduled_for", "-started_at", "pk")[: UPCOMING_SHOWN + 1]
    )
    live = current[0] if current and current[0].is_live else None
    upcoming = [space for space in current if not space.is_live][:UPCOMING_SHOWN]
    published = Transcript.objects.filter(
        space=OuterRef("pk"), published_at__isnull=False, deleted_at__isnull=True
    )
    replay = Recording.objects.filter(space=OuterRef("pk"), state=Recording.State.READY)
    past = list(
        hosted.filter(state=Space.State.ENDED)
        .annotate(transcript_public=Exists(published), has_replay=Exists(replay))
        .order_by(Coalesce("ended_at", "created_at").desc(), "-pk")[:PROFILE_PAST_SHOWN]
    )
    return {"profile_live": live, "profile_upcoming": upcoming, "profile_past": past}
