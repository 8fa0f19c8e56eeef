"""Every change to a Space goes through here: views, the websocket consumer, the admin and Celery
tasks call these functions.

Each one checks that the person may do it, writes in its own transaction and announces the change
with ``publish_on_commit``. Changes to the stage take a row lock on the Space first
(``select_for_update``; SQLite takes its write lock at BEGIN IMMEDIATE), so the checks and the
write see the same stage — two promotions at once cannot make a fourteenth seat.

A listener coming or going does not touch the Space row: it locks only that person's Participant
row (so their own tabs and any stage action on them are ordered) and moves the Space's
``Audience`` by one with a single ``F()`` UPDATE. A storm of N joins is then N constant-cost
writes instead of N serialised counts over the whole audience. The Space lock is ``FOR NO KEY
UPDATE`` on PostgreSQL, which does not conflict with the key-share lock that inserting a
Connection (a foreign key to the Space) takes, so a stage action never holds up an arrival.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts import hooks as account_hooks
from accounts.ratelimit import Limit, hit
from accounts.selectors import is_moderator
from accounts.services import hosting_ensure_allowed
from accounts.validators import validate_single_line

from . import golive, hooks, protocol, reminders
from .access import entry_refusal, guest_refusal
from .audio import may_signal, stage_close, stage_open
from .events import CLOSE_EVENT, home_publish, publish_on_commit, publish_to_socket_on_commit
from .models import (
    TITLE_MAX,
    Audience,
    CaptionLine,
    Connection,
    GuestConnection,
    Participant,
    Space,
    SpaceSummary,
    validate_topics,
)
from .rules import COHOSTS_MAX, SPEAKERS_MAX, STAGE_MAX
from .selectors import (
    fresh_connections,
    fresh_guest_connections,
    guest_count,
    hand_view,
    home_cache_clear,
    listener_count,
    may_ask_to_speak,
    participant_view,
    presence_cutoff,
)

Role = Participant.Role


# --- errors: each carries a protocol error code and a message for people ----------------------


class RoomError(Exception):
    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class RoomForbidden(RoomError, PermissionDenied):
    code = "forbidden"


class EntryRefused(RoomForbidden):
    code = "entry_refused"


class NotAllowedToSpeak(RoomForbidden):
    code = "not_allowed_to_speak"


class StageFull(RoomError):
    code = "stage_full"


class NotLive(RoomError):
    code = "not_live"


class NotInSpace(RoomError):
    code = "not_found"


# --- helpers -----------------------------------------------------------------------------------


def _lock_space(space_id: int) -> Space:
    # NO KEY UPDATE: excludes other stage changes, but not the key-share lock a new Connection or
    # Participant row takes on its Space (PostgreSQL; SQLite has one writer at a time anyway).
    return Space.objects.select_for_update(no_key=True).get(pk=space_id)


def _lock(space_id: int, *, live: bool = True) -> Space:
    space = _lock_space(space_id)
    if live and space.state != Space.State.LIVE:
        raise NotLive("This Space isn't live any more." if space.started_at else "This Space hasn't started.")
    return space


def _member(space: Space, user_id: int, *, who: str = "That person") -> Participant:
    participant = (
        Participant.objects.select_related("user")
        .filter(space=space, user_id=user_id, removed_at=None)
        .first()
    )
    if participant is None:
        raise NotInSpace(f"{who} isn't in this Space.")
    return participant


def _me(space: Space, user) -> Participant:
    return _member(space, user.pk, who="You")


def _require_moderator(actor: Participant) -> None:
    if actor.role not in (Role.HOST, Role.COHOST):
        raise RoomForbidden("Only the host and co-hosts can do that.")


def _is_present(participant: Participant) -> bool:
    return fresh_connections().filter(participant=participant).exists()


def _bump(space: Space) -> int:
    space.version += 1
    Space.objects.filter(pk=space.pk).update(version=space.version)
    return space.version


def _stage_counts(space: Space) -> dict[str, int]:
    rows = (
        Participant.objects.filter(space=space, removed_at=None, role__in=Participant.STAGE_ROLES)
        .values("role")
        .annotate(n=Count("id"))
    )
    return {row["role"]: row["n"] for row in rows}


def _ensure_seat(space: Space, role: str, *, freeing: str | None = None) -> None:
    """Raise StageFull unless one more `role` fits (after `freeing` — the person's current seat —
    is given up). Call with the Space locked."""
    counts = _stage_counts(space)
    if freeing:
        counts[freeing] = counts.get(freeing, 0) - 1
    if role == Role.COHOST and counts.get(Role.COHOST, 0) >= COHOSTS_MAX:
        raise StageFull(f"A Space can have {COHOSTS_MAX} co-hosts at most. Remove one first.")
    if role == Role.SPEAKER and counts.get(Role.SPEAKER, 0) >= SPEAKERS_MAX:
        raise StageFull(
            f"The stage is full: {STAGE_MAX} people, {SPEAKERS_MAX} of them speakers. "
            "Move someone to the audience first."
        )
    if sum(counts.values()) >= STAGE_MAX:
        raise StageFull(f"The stage is full: {STAGE_MAX} people is the most a Space can have.")


def _set_role(space: Space, p: Participant, role: str, *, by_id: int | None) -> None:
    previous = p.role
    p.role = role
    if role == Role.LISTENER:
        p.muted = True
        p.stage_since = None
    elif p.stage_since is None:
        p.stage_since = timezone.now()
        p.muted = True  # nobody is heard before they choose to be
    if role != Role.LISTENER:
        p.was_on_stage = True
    p.save(
        update_fields=[
            "role",
            "muted",
            "stage_since",
            "was_on_stage",
            "hand_raised_at",
            "invited_at",
            "invited_by",
        ]
    )
    if (previous == Role.LISTENER) != (role == Role.LISTENER):
        # p.save() above holds p's row lock, so this presence check is ordered with p's own joins
        # and leaves (they lock that row too): the audience moves by exactly one, or not at all.
        if _is_present(p):
            _audience_add(space.pk, listeners=1 if role == Role.LISTENER else -1)
        _publish_listener_count(space)  # someone joined or left the audience
        transaction.on_commit(home_changed)  # the live bar shows who is on stage
    event = {
        "type": "role_changed",
        "v": _bump(space),
        "participant": participant_view(p, present=_is_present(p)),
        "previous": previous,
        "by": by_id,
    }
    publish_on_commit(space.pk, event)


def _clear_hand(space: Space, p: Participant, reason: str) -> None:
    if p.hand_raised_at is None:
        return
    p.hand_raised_at = None
    p.save(update_fields=["hand_raised_at"])
    publish_on_commit(
        space.pk, {"type": "hand_lowered", "v": _bump(space), "user_id": p.user_id, "reason": reason}
    )


def _clear_invite(space: Space, p: Participant, reason: str) -> None:
    if p.invited_at is None:
        return
    p.invited_at = None
    p.invited_by = None
    p.save(update_fields=["invited_at", "invited_by"])
    publish_on_commit(
        space.pk, {"type": "invite_cleared", "v": _bump(space), "user_id": p.user_id, "reason": reason}
    )


def _audience_add(space_id: int, *, listeners: int = 0, guests: int = 0) -> Audience:
    """Move the Space's audience by a few people: one UPDATE of one row (which it keeps locked
    until commit, so counts come out in the order they were made), no count over the audience.
    The most at once is kept in the same statement, for the host's summary."""
    changed = Audience.objects.filter(space_id=space_id).update(
        listeners=F("listeners") + listeners,
        guests=F("guests") + guests,
        peak=Greatest(F("peak"), F("listeners") + F("guests") + (listeners + guests)),
        seq=F("seq") + 1,
    )
    if not changed:  # a Space from before audiences were kept, or made without space_create
        return audience_recount(space_id=space_id)
    return Audience.objects.get(space_id=space_id)


def audience_recount(*, space_id: int) -> Audience:
    """Count the audience again from the presence rows, the truth (the sweep runs this, correcting
    drift from processes that died or sockets gone stale). The Audience row is locked first, so a
    join that has not yet added itself adds itself to the new figure after this commits."""
    with transaction.atomic():
        audience, _ = Audience.objects.select_for_update().get_or_create(space_id=space_id)
        guests = guest_count(space_id=space_id)
        listeners = listener_count(space_id=space_id, guests=0)
        if (audience.listeners, audience.guests) != (listeners, guests):
            audience.listeners, audience.guests = listeners, guests
            audience.peak = max(audience.peak, audience.count)
            audience.seq += 1
            audience.save(update_fields=["listeners", "guests", "peak", "seq"])
    return audience


def _publish_listener_count(space: Space, audience: Audience | None = None) -> None:
    audience = audience or Audience.objects.filter(space_id=space.pk).first()
    if audience is None:
        audience = audience_recount(space_id=space.pk)
    event = {"type": "listener_count", "count": audience.count, "guests": max(audience.guests, 0)}
    publish_on_commit(space.pk, {**event, "seq": audience.seq})
    transaction.on_commit(home_counts_changed)  # "Live now" shows listener counts


def home_changed() -> None:
    """What the home page shows changed (run after commit): forget the shared sections and tell
    the open home pages, which re-read them."""
    home_cache_clear()
    home_publish()


def home_counts_changed() -> None:
    """Only a listener count changed (run after commit): the open home pages re-read at most once
    per SPACES_HOME_COUNT_SECONDS, so a join storm does not re-render home per join."""
    home_cache_clear()
    home_publish(counts_only=True)


# --- the Space itself ----------------------------------------------------------------------------


def space_create(
    *,
    host,
    title: str,
    topics: list[str] | tuple[str, ...] = (),
    speak_policy: str = Space.SpeakPolicy.EVERYONE,
    captions_enabled: bool = False,
    signed_in_only: bool = False,
) -> Space:
    """Open a live Space now, with `host` on stage. (Scheduling is rooms/scheduling.py:
    ``space_schedule``; a scheduled Space goes live through ``space_start``.)"""
    hosting_ensure_allowed(user=host)
    title = (title or "").strip()
    if not title:
        raise ValidationError("Give your Space a title.")
    if len(title) > TITLE_MAX:
        raise ValidationError(f"Titles are up to {TITLE_MAX} characters; this one has {len(title)}.")
    validate_single_line(title)
    topics = [t.strip() for t in topics]
    validate_topics(topics)
    if speak_policy not in Space.SpeakPolicy.values:
        raise ValidationError("Choose who can speak: everyone, people you follow, or only people you invite.")
    now = timezone.now()
    with transaction.atomic():
        # One host's starts are serialised, so two tabs can't open two live Spaces.
        get_user_model().objects.select_for_update().filter(pk=host.pk).first()
        _ensure_not_hosting_live(host)
        space = Space.objects.create(
            host=host,
            title=title,
            topics=topics,
            speak_policy=speak_policy,
            signed_in_only=signed_in_only,
            captions_enabled=captions_enabled,
            state=Space.State.LIVE,
            started_at=now,
        )
        Participant.objects.create(space=space, user=host, role=Role.HOST, stage_since=now, muted=True)
        Audience.objects.create(space=space)
        transaction.on_commit(lambda: stage_open(space_id=space.pk))
        transaction.on_commit(home_changed)
        golive.golive_plan(space=space)
    return space


def _ensure_not_hosting_live(host) -> None:
    if Space.objects.filter(host=host, state=Space.State.LIVE).exists():
        raise ValidationError("You're already hosting a live Space. End it before starting another.")


def space_start(*, space: Space, by) -> Space:
    """A scheduled Space goes live. Only its host can start it; ended Spaces never restart."""
    hosting_ensure_allowed(user=by)
    with transaction.atomic():
        # Serialise one host's starts, so two tabs can't put them live in two Spaces at once.
        get_user_model().objects.select_for_update().filter(pk=by.pk).first()
        space = _lock(space.pk, live=False)
        if by.pk != space.host_id:
            raise RoomForbidden("Only the host can start this Space.")
        if space.state == Space.State.LIVE:
            return space
        if space.state != Space.State.SCHEDULED:
            raise NotLive("This Space has ended and can't be restarted. Start a new one instead.")
        _ensure_not_hosting_live(by)
        now = timezone.now()
        space.state = Space.State.LIVE
        space.started_at = now
        space.save(update_fields=["state", "started_at", "updated_at"])
        Participant.objects.update_or_create(
            space=space, user_id=space.host_id, defaults={"role": Role.HOST, "stage_since": now}
        )
        Audience.objects.get_or_create(space=space)
        transaction.on_commit(lambda: stage_open(space_id=space.pk))
        from .recordings.service import recording_on_start

        recording_on_start(space=space)
        transaction.on_commit(home_changed)
        # Everyone reminded is told: rows in the outbox, sent by the sweep only after commit.
        reminders.space_live_notify(space=space)
        # Then every follower (after commit, in chunks; a reminded follower is told once).
        golive.golive_plan(space=space)
    return space


def space_end(*, space: Space, by=None, note: str = "") -> Space:
    """End a live Space (or cancel a scheduled one): by its host, by a moderator (`rooms.end_space`),
    or by the system (`by=None`) when the host has been gone longer than the grace. Everyone in it
    is told (``space_ended``) and their sockets close."""
    if space.state == Space.State.SCHEDULED and by is not None:
        # Cancelling a scheduled Space also withdraws reminders, tells people and refunds tickets.
        from .scheduling import space_cancel

        return space_cancel(space=space, by=by, audit_note=note)
    with transaction.atomic():
        space = _lock(space.pk, live=False)
        if space.state in (Space.State.ENDED, Space.State.CANCELLED):
            raise NotLive("This Space has already ended.")
        if by is None:
            reason = "host_gone"
        elif by.pk == space.host_id:
            reason = "host"
        elif is_moderator(user=by, perm="rooms.end_space"):
            reason = "moderator"
        else:
            raise RoomForbidden("Only the host can end this Space.")
        now = timezone.now()
        was_live = space.state == Space.State.LIVE
        space.state = Space.State.ENDED if was_live else Space.State.CANCELLED
        space.ended_at = now
        space.ended_reason = reason
        space.save(update_fields=["state", "ended_at", "ended_reason", "updated_at"])
        Participant.objects.filter(space=space, left_at=None).update(
            left_at=now, hand_raised_at=None, invited_at=None, invited_by=None
        )
        if reason == "moderator":
            account_hooks.moderator_acted.send(
                sender=Space, by=by, action="space_end", target=space, note=note
            )
        Connection.objects.filter(space=space).delete()
        GuestConnection.objects.filter(space=space).delete()
        Audience.objects.filter(space=space).update(listeners=0, guests=0, seq=F("seq") + 1)
        transaction.on_commit(home_changed)
        if was_live:
            _summary_record(space)
            publish_on_commit(space.pk, {"type": "space_ended", "reason": reason})
            transaction.on_commit(lambda: stage_close(space_id=space.pk))
            from .captions.service import transcript_improve_later

            transcript_improve_later(space=space)
            from .recordings.service import recording_on_end

            recording_on_end(space=space)
    return space


def _summary_record(space: Space) -> SpaceSummary:
    """The host's figures, computed once as the Space ends (with it locked), from what was kept."""
    others = Participant.objects.filter(space=space).exclude(user_id=space.host_id)
    figures = others.aggregate(total=Count("pk"), speakers=Count("pk", filter=Q(was_on_stage=True)))
    extra: list[dict] = []
    for _receiver, response in hooks.space_summary_figures.send(sender=Space, space=space):
        extra.extend(response or [])
    return SpaceSummary.objects.create(
        space=space,
        duration_seconds=max(
            int((space.ended_at - (space.started_at or space.created_at)).total_seconds()), 0
        ),
        peak_listeners=max(
            [space.peak_listeners, *Audience.objects.filter(space=space).values_list("peak", flat=True)]
        ),
        total_listeners=figures["total"],
        speakers=figures["speakers"],
        reactions=space.reaction_count,
        caption_lines=CaptionLine.objects.filter(space=space).count(),
        extra_figures=extra,
    )


def captions_toggle(*, space: Space, by, on: bool) -> Space:
    with transaction.atomic():
        space = _lock(space.pk)
        if by.pk != space.host_id:
            raise RoomForbidden("Only the host can turn captions on or off.")
        if space.captions_enabled != on:
            space.captions_enabled = on
            space.save(update_fields=["captions_enabled", "updated_at"])
            publish_on_commit(space.pk, {"type": "captions_toggled", "v": _bump(space), "on": on})
    return space


# --- presence -----------------------------------------------------------------------------------


def participant_join(*, space: Space, user, channel_name: str, process: str) -> Participant:
    """Open one connection of `user` in `space`. Refused (EntryRefused) by ``entry_refusal``.

    No lock on the Space and no count over the audience: the person's own Participant row is
    locked (ordering their tabs and any stage action on them), the Connection row inserted and,
    when they were not here yet as a listener, the Audience moved by one."""
    with transaction.atomic():
        space = Space.objects.get(pk=space.pk)
        refusal = entry_refusal(space=space, user=user)
        if refusal:
            raise EntryRefused(refusal)
        participant, created = Participant.objects.select_for_update().get_or_create(space=space, user=user)
        participant.user = user
        if participant.removed_at is not None:  # removed while we were getting here
            raise EntryRefused("You were removed from this Space, so you can't rejoin it.")
        was_present = not created and _is_present(participant)
        Connection.objects.create(
            channel_name=channel_name,
            space=space,
            participant=participant,
            user=user,
            process=process,
            seen_at=timezone.now(),
        )
        if not was_present:
            if participant.left_at is not None:
                participant.left_at = None
                participant.save(update_fields=["left_at"])
            joined = {
                "type": "participant_joined",
                "participant": participant_view(participant, present=True),
            }
            if participant.role == Role.LISTENER:
                audience = _audience_add(space.pk, listeners=1)
                if audience.listeners <= protocol.LISTENERS_SHOWN:
                    publish_on_commit(space.pk, joined)
                _publish_listener_count(space, audience)
            else:
                publish_on_commit(space.pk, joined)
    return participant


def _participant_gone(space: Space, p: Participant, *, reason: str, at: dt.datetime) -> None:
    """`p` has no live connection any more. Call with the Space locked, or, for a listener with no
    raised hand and no invitation (nothing on stage changes), with only p's row locked."""
    p.left_at = at
    p.save(update_fields=["left_at"])
    _clear_hand(space, p, "left")
    _clear_invite(space, p, "left")
    if p.role == Role.LISTENER:
        # Audiences come and go all the time: the hubs gather these into one frame a second.
        publish_on_commit(space.pk, {"type": "listener_left", "user_id": p.user_id})
        _publish_listener_count(space, _audience_add(space.pk, listeners=-1))
    else:
        publish_on_commit(space.pk, {"type": "participant_left", "user_id": p.user_id, "reason": reason})


def _plain_listener(p: Participant) -> bool:
    """Leaving changes nothing on stage: no seat, no raised hand, no invitation to clear."""
    return p.role == Role.LISTENER and p.hand_raised_at is None and p.invited_at is None


def connection_close(*, channel_name: str) -> None:
    """A socket closed (with or without a goodbye). When it was the person's last, they have left.
    A plain listener's leave locks only their own row; anyone else's takes the Space lock first
    (always Space before Participant, as stage actions do), since their hand, invitation or seat
    is stage state."""
    conn = Connection.objects.filter(channel_name=channel_name).select_related("participant").first()
    if conn is None:
        return  # already swept, or the Space ended
    with transaction.atomic():
        space = None if _plain_listener(conn.participant) else _lock_space(conn.space_id)
        p = Participant.objects.select_for_update().get(pk=conn.participant_id)
        if space is None and not _plain_listener(p):  # raised a hand or was invited meanwhile
            transaction.set_rollback(True)
        else:
            if not Connection.objects.filter(pk=conn.pk).delete()[0]:
                return  # swept, or closed by another path, meanwhile
            if p.removed_at is None and not _is_present(p):
                space = space or Space.objects.get(pk=conn.space_id)
                _participant_gone(space, p, reason="left", at=timezone.now())
            return
    with transaction.atomic():  # the rare case above, again with the Space locked
        space = _lock_space(conn.space_id)
        p = Participant.objects.select_related("user").get(pk=conn.participant_id)
        if not Connection.objects.filter(pk=conn.pk).delete()[0]:
            return
        if p.removed_at is None and not _is_present(p):
            _participant_gone(space, p, reason="left", at=timezone.now())


HEARTBEAT_BATCH = 500  # channel names per UPDATE (well under SQLite's 32,766 parameters)


def connection_heartbeat(*, process: str, channel_names: Iterable[str]) -> int:
    """This process's sockets named in `channel_names` are alive: their rows (and their guests')
    are refreshed, a few UPDATEs for thousands. A row of this process whose socket it no longer
    holds is left to go stale, so the sweep clears it."""
    now = timezone.now()
    names = list(channel_names)
    fresh = 0
    for i in range(0, len(names), HEARTBEAT_BATCH):
        batch = names[i : i + HEARTBEAT_BATCH]
        fresh += Connection.objects.filter(process=process, channel_name__in=batch).update(seen_at=now)
        fresh += GuestConnection.objects.filter(process=process, channel_name__in=batch).update(seen_at=now)
    return fresh


def participant_leave(*, space: Space, by) -> None:
    """A goodbye: a speaker or co-host gives up their seat, a raised hand or invitation lapses.
    (The host's seat stays: the Space ends when the host ends it or has been gone past the grace.)"""
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        _clear_hand(space, p, "left")
        _clear_invite(space, p, "left")
        if p.role in (Role.COHOST, Role.SPEAKER):
            _set_role(space, p, Role.LISTENER, by_id=by.pk)


def presence_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Clean up after sockets that vanished without a goodbye (e.g. a killed process): delete stale
    connection rows, tell the room who is gone, free the seats of stage members gone longer than the
    grace, and end live Spaces whose host has been gone longer than the grace. Run by Celery beat
    and by every websocket process's heartbeat; safe to run anywhere, any number of times."""
    now = now or timezone.now()
    cutoff = presence_cutoff(now)
    grace_cutoff = now - dt.timedelta(seconds=settings.SPACES_HOST_GRACE_SECONDS)
    stats = {"stale": 0, "gone": 0, "unseated": 0, "ended": 0, "recounted": 0}

    for space_id in set(Connection.objects.filter(seen_at__lt=cutoff).values_list("space_id", flat=True)):
        with transaction.atomic():
            space = _lock_space(space_id)
            stale = Connection.objects.filter(space=space, seen_at__lt=cutoff)
            last_seen = dict(
                stale.values("participant_id")
                .annotate(last=Max("seen_at"))
                .values_list("participant_id", "last")
            )
            stats["stale"] += stale.delete()[0]
            for p in Participant.objects.select_related("user").filter(pk__in=last_seen, removed_at=None):
                if not _is_present(p):
                    _participant_gone(space, p, reason="gone", at=last_seen[p.pk])
                    stats["gone"] += 1

    for space_id in set(
        GuestConnection.objects.filter(seen_at__lt=cutoff).values_list("space_id", flat=True)
    ):
        with transaction.atomic():
            space = _lock_space(space_id)
            stale = list(GuestConnection.objects.filter(space=space, seen_at__lt=cutoff))
            GuestConnection.objects.filter(pk__in=[g.pk for g in stale]).delete()
            stats["stale"] += len(stale)
            if space.state == Space.State.LIVE:
                for guest in stale:
                    _guest_gone(space, guest.signal_id)
                _publish_listener_count(space, audience_recount(space_id=space.pk))

    present = Exists(fresh_connections(cutoff=cutoff).filter(participant=OuterRef("pk")))
    absent_seats = Participant.objects.filter(
        space__state=Space.State.LIVE,
        role__in=(Role.COHOST, Role.SPEAKER),
        removed_at=None,
        left_at__lt=grace_cutoff,
    ).filter(~present)
    for p in absent_seats.select_related("user"):
        with transaction.atomic():
            space = _lock_space(p.space_id)
            p.refresh_from_db()
            if space.state == Space.State.LIVE and p.on_stage and not _is_present(p):
                _set_role(space, p, Role.LISTENER, by_id=None)
                stats["unseated"] += 1

    host_here = Exists(
        fresh_connections(cutoff=cutoff).filter(space=OuterRef("pk"), user=OuterRef("host_id"))
    )
    host_left = Participant.objects.filter(space=OuterRef("pk"), user=OuterRef("host_id")).values("left_at")
    for space in (
        Space.objects.filter(state=Space.State.LIVE).filter(~host_here).annotate(host_left=host_left)
    ):
        gone_since = space.host_left or space.started_at or space.created_at
        if gone_since < grace_cutoff:
            try:
                space_end(space=space, by=None)
            except NotLive:
                continue  # someone else ended it first
            stats["ended"] += 1

    # Audiences are kept by +1/-1 as people come and go; recount them from the presence rows
    # (the truth) so that whatever drifted (a process killed between its write and its commit
    # hook, sockets that went stale) is right again after one sweep.
    for space_id in Space.objects.filter(state=Space.State.LIVE).values_list("pk", flat=True):
        before = Audience.objects.filter(space_id=space_id).values_list("seq", flat=True).first()
        audience = audience_recount(space_id=space_id)
        if audience.seq != before:
            stats["recounted"] += 1
            with transaction.atomic():
                _publish_listener_count(Space(pk=space_id), audience)
    return stats


# --- hands and invitations ------------------------------------------------------------------------


def hand_raise(*, space: Space, by) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        if p.role != Role.LISTENER:
            raise RoomError("You're already on stage.")
        if p.hand_raised_at is None:
            if not may_ask_to_speak(space=space, user_id=by.pk):
                raise NotAllowedToSpeak(_policy_message(space))
            p.hand_raised_at = timezone.now()
            p.save(update_fields=["hand_raised_at"])
            publish_on_commit(space.pk, {"type": "hand_raised", "v": _bump(space), "hand": hand_view(p)})
    return p


def _policy_message(space: Space) -> str:
    if space.speak_policy == Space.SpeakPolicy.FOLLOWED:
        return "In this Space only people the host follows can ask to speak."
    return "In this Space only people the host invites can speak."


def hand_lower(*, space: Space, by) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        _clear_hand(space, p, "lowered")
    return p


def hand_dismiss(*, space: Space, by, user_id: int) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        _require_moderator(_me(space, by))
        p = _member(space, user_id)
        if p.hand_raised_at is None:
            raise RoomError(f"{p.user.name}'s hand is no longer raised.")
        _clear_hand(space, p, "dismissed")
    return p


def speaker_accept(*, space: Space, by, user_id: int) -> Participant:
    """A raised hand is accepted: the listener becomes a speaker, if a seat is free."""
    with transaction.atomic():
        space = _lock(space.pk)
        _require_moderator(_me(space, by))
        p = _member(space, user_id)
        if p.role != Role.LISTENER or p.hand_raised_at is None:
            raise RoomError(f"{p.user.name}'s hand is no longer raised.")
        if not may_ask_to_speak(space=space, user_id=p.user_id):
            raise NotAllowedToSpeak(_policy_message(space))
        _ensure_seat(space, Role.SPEAKER)
        _clear_hand(space, p, "accepted")
        _clear_invite(space, p, "accepted")
        _set_role(space, p, Role.SPEAKER, by_id=by.pk)
    return p


def speaker_invite(*, space: Space, by, user_id: int) -> Participant:
    """Invite a listener who is here to speak; they accept or decline."""
    with transaction.atomic():
        space = _lock(space.pk)
        _require_moderator(_me(space, by))
        p = _member(space, user_id)
        if p.role != Role.LISTENER:
            raise RoomError(f"{p.user.name} is already on stage.")
        if not _is_present(p):
            raise NotInSpace(f"{p.user.name} isn't here right now.")
        if p.invited_at is None:
            p.invited_at = timezone.now()
            p.invited_by = by
            p.save(update_fields=["invited_at", "invited_by"])
            publish_on_commit(
                space.pk, {"type": "invited", "v": _bump(space), "user_id": p.user_id, "by": by.pk}
            )
    return p


def invite_accept(*, space: Space, by) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        if p.invited_at is None or p.role != Role.LISTENER:
            raise RoomError("There's no invitation to accept; it may have been withdrawn.")
        _ensure_seat(space, Role.SPEAKER)
        _clear_invite(space, p, "accepted")
        _clear_hand(space, p, "accepted")
        _set_role(space, p, Role.SPEAKER, by_id=by.pk)
    return p


def invite_decline(*, space: Space, by) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        _clear_invite(space, p, "declined")
    return p


# --- the stage --------------------------------------------------------------------------------------


def cohost_appoint(*, space: Space, by, user_id: int) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        if by.pk != space.host_id:
            raise RoomForbidden("Only the host can appoint co-hosts.")
        p = _member(space, user_id)
        if p.role == Role.HOST:
            raise RoomError("You're the host already.")
        if p.role == Role.COHOST:
            raise RoomError(f"{p.user.name} is already a co-host.")
        _ensure_seat(space, Role.COHOST, freeing=p.role if p.on_stage else None)
        _clear_hand(space, p, "accepted")
        _clear_invite(space, p, "accepted")
        _set_role(space, p, Role.COHOST, by_id=by.pk)
    return p


def cohost_remove(*, space: Space, by, user_id: int) -> Participant:
    """The co-host becomes a speaker again (or a listener, if all speaker seats are taken)."""
    with transaction.atomic():
        space = _lock(space.pk)
        if by.pk != space.host_id:
            raise RoomForbidden("Only the host can remove co-hosts.")
        p = _member(space, user_id)
        if p.role != Role.COHOST:
            raise RoomError(f"{p.user.name} isn't a co-host.")
        speakers = _stage_counts(space).get(Role.SPEAKER, 0)
        _set_role(space, p, Role.SPEAKER if speakers < SPEAKERS_MAX else Role.LISTENER, by_id=by.pk)
    return p


def _ensure_outranks(actor: Participant, target: Participant, doing: str) -> None:
    """The host can act on anyone else; a co-host only on speakers and listeners."""
    if target.role == Role.HOST:
        raise RoomForbidden(f"Nobody can {doing} the host.")
    if target.role == Role.COHOST and actor.role != Role.HOST:
        raise RoomForbidden(f"Only the host can {doing} a co-host.")


def speaker_move_to_audience(*, space: Space, by, user_id: int) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        actor = _me(space, by)
        _require_moderator(actor)
        p = _member(space, user_id)
        _ensure_outranks(actor, p, "move to the audience")
        if p.role == Role.LISTENER:
            raise RoomError(f"{p.user.name} is already in the audience.")
        _set_role(space, p, Role.LISTENER, by_id=by.pk)
    return p


def speaker_step_down(*, space: Space, by) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        if p.role == Role.HOST:
            raise RoomError("The host stays on stage. End the Space to leave it.")
        if p.role == Role.LISTENER:
            raise RoomError("You're not on stage.")
        _set_role(space, p, Role.LISTENER, by_id=by.pk)
    return p


def participant_remove(*, space: Space, by, user_id: int) -> Participant:
    """Remove someone from the Space for good: their sockets close and they cannot rejoin.
    The host and co-hosts remove people from their Space; a site moderator (`rooms.end_space`,
    e.g. moderation.services.account_suspend) removes anyone but the host from any Space."""
    with transaction.atomic():
        space = _lock(space.pk)
        site_moderator = is_moderator(user=by, perm="rooms.end_space")
        actor = None if site_moderator else _me(space, by)
        if actor is not None:
            _require_moderator(actor)
        p = _member(space, user_id)
        if actor is None:
            if p.role == Role.HOST:
                raise RoomForbidden("A Space's host can't be removed from it. End the Space instead.")
        else:
            if p.pk == actor.pk:
                raise RoomError("You can't remove yourself. Leave the Space instead.")
            _ensure_outranks(actor, p, "remove")
        was_listener = p.role == Role.LISTENER
        now = timezone.now()
        p.role = Role.LISTENER
        p.muted = True
        p.stage_since = p.hand_raised_at = p.invited_at = p.invited_by = None
        p.removed_at = p.left_at = now
        p.removed_by = by
        p.save()
        if was_listener and _is_present(p):
            _audience_add(space.pk, listeners=-1)
        Connection.objects.filter(participant=p).delete()
        # An enforcement action: apps above rooms record it in this transaction (moderation's audit log).
        hooks.participant_removed.send(sender=Participant, space=space, participant=p, by=by)
        publish_on_commit(space.pk, {"type": "participant_left", "user_id": p.user_id, "reason": "removed"})
        publish_on_commit(space.pk, {"type": CLOSE_EVENT, "code": protocol.CLOSE_REMOVED}, to_user=p.user_id)
        if was_listener:
            _publish_listener_count(space)
    return p


# --- microphones -----------------------------------------------------------------------------------


def _set_muted(space: Space, p: Participant, muted: bool, *, by_id: int) -> None:
    if p.muted == muted:
        return
    p.muted = muted
    p.save(update_fields=["muted"])
    publish_on_commit(
        space.pk,
        {"type": "muted", "v": _bump(space), "user_id": p.user_id, "muted": muted, "by": by_id},
    )


def mute_self(*, space: Space, by) -> Participant:
    return _self_mic(space=space, by=by, muted=True)


def unmute_self(*, space: Space, by) -> Participant:
    return _self_mic(space=space, by=by, muted=False)


def _self_mic(*, space: Space, by, muted: bool) -> Participant:
    with transaction.atomic():
        space = _lock(space.pk)
        p = _me(space, by)
        if not p.on_stage:
            raise RoomForbidden("Only people on stage have a microphone. Raise your hand to ask to speak.")
        _set_muted(space, p, muted, by_id=by.pk)
    return p


def mute_other(*, space: Space, by, user_id: int) -> Participant:
    """The host or a co-host mutes a speaker (the host may also mute a co-host). Never the reverse:
    there is no way to unmute someone else."""
    with transaction.atomic():
        space = _lock(space.pk)
        actor = _me(space, by)
        _require_moderator(actor)
        p = _member(space, user_id)
        if p.pk != actor.pk:
            _ensure_outranks(actor, p, "mute")
        if not p.on_stage:
            raise RoomError(f"{p.user.name} isn't on stage.")
        _set_muted(space, p, True, by_id=by.pk)
    return p


def unmute_other(*, space: Space, by, user_id: int) -> None:
    """Always refused: people unmute themselves (DESIGN.md). Here so every client gets the reason."""
    raise RoomForbidden("Only speakers can unmute themselves. Ask them to unmute.")


# --- momentary things: reactions, voice activity, signalling ------------------------------------


def _live_member(space: Space, user) -> Participant:
    p = (
        Participant.objects.select_related("space")
        .filter(space_id=space.pk, user_id=user.pk, removed_at=None)
        .annotate(present=Exists(fresh_connections().filter(participant=OuterRef("pk"))))
        .first()
    )
    if p is None:
        raise NotInSpace("You aren't in this Space.")
    if p.space.state != Space.State.LIVE:
        raise NotLive("This Space isn't live any more.")
    return p


def reaction_send(*, space: Space, by, emoji: str) -> None:
    """Show an emoji on the sender's avatar. A flood is dropped and only the sender told."""
    if emoji not in protocol.REACTIONS:
        raise RoomError("Pick one of the reactions shown.", code="bad_field")
    hit(
        f"rooms:react:{space.pk}:{by.pk}",
        Limit(settings.SPACES_REACTIONS_PER_WINDOW, settings.SPACES_REACTIONS_WINDOW_SECONDS),
        "You're sending reactions too fast. Wait a few seconds and try again.",
    )
    # Counted only in a live Space the sender is in: one statement, as a busy Space sends many.
    counted = Space.objects.filter(
        pk=space.pk, state=Space.State.LIVE, participants__user=by, participants__removed_at=None
    ).update(reaction_count=F("reaction_count") + 1)
    if not counted:
        _live_member(space, by)  # raises, saying which
        raise NotInSpace("You aren't in this Space.")
    publish_on_commit(space.pk, {"type": "reaction", "user_id": by.pk, "emoji": emoji})


SPEAKING_THROTTLE_SECONDS = 0.5


def speaking_report(*, space: Space, by, on: bool) -> bool:
    """A stage member's browser says they started or stopped talking. Reports are throttled per person
    (a flood is dropped silently: the next one carries the truth). Returns whether it was sent."""
    p = _live_member(space, by)
    if not p.on_stage:
        raise RoomForbidden("Only people on stage can speak.")
    if on and p.muted:
        return False  # a report racing the mute
    key = f"rooms:speaking:{space.pk}:{by.pk}"
    now = time.monotonic()
    last = cache.get(key)
    if last is not None and last[0] == on and now - last[1] < SPEAKING_THROTTLE_SECONDS:
        return False
    cache.set(key, (on, now), timeout=60)
    if on:
        from .recordings.service import speaker_mark

        speaker_mark(space=space, user=by)
    publish_on_commit(space.pk, {"type": "speaking", "user_id": by.pk, "on": on})
    return True


def signal_send(*, space: Space, by, to: int, kind: str, data: dict[str, Any]) -> None:
    """Relay WebRTC signalling between two people allowed to exchange audio: both present in this
    live Space, neither removed, and at least one of them on stage (listeners never reach each
    other). A negative `to` is a guest's socket (``GuestConnection.signal_id``): only the stage
    reaches guests."""
    if kind not in protocol.SIGNAL_KINDS:
        raise RoomError("kind must be offer, answer or ice.", code="bad_field")
    if to == by.pk:
        raise RoomError("You can't signal yourself.", code="bad_field")
    sender = _live_member(space, by)
    if to < 0:
        guest = _fresh_guest(space, -to)
        if guest is None or not sender.present:
            raise NotInSpace("That listener isn't here right now.")
        if not sender.on_stage:
            raise RoomForbidden("Audio only flows between the stage and everyone else.")
        event = {"type": "signal", "from": by.pk, "kind": kind, "data": data}
        publish_to_socket_on_commit(guest.channel_name, space.pk, event)
        return
    target = (
        Participant.objects.filter(space_id=space.pk, user_id=to, removed_at=None)
        .annotate(present=Exists(fresh_connections().filter(participant=OuterRef("pk"))))
        .first()
    )
    if target is None or not target.present or not sender.present:
        raise NotInSpace("That person isn't here right now.")
    if not may_signal(sender=sender, recipient=target):
        raise RoomForbidden("Audio only flows between the stage and everyone else.")
    publish_on_commit(space.pk, {"type": "signal", "from": by.pk, "kind": kind, "data": data}, to_user=to)


# --- moderation hook ------------------------------------------------------------------------------


def user_sockets_close(*, user_id: int, message: str, code: int = protocol.CLOSE_FORCED) -> None:
    """Close every Space socket `user_id` has open, in any process, once the current transaction
    commits (e.g. when their account is suspended). `message` is shown to them. Their presence is
    cleaned up by the normal disconnect path; ``entry_refusal`` keeps them out afterwards."""
    publish_on_commit(None, {"type": CLOSE_EVENT, "code": code, "message": message}, to_user=user_id)


# --- guests: listening without an account ----------------------------------------------------------


class GuestLimit(RoomError):
    code = "rate_limited"


class SignInRequired(EntryRefused):
    """The host lets only signed-in people listen (close 4401: the page offers to sign in)."""


def guest_join(*, space: Space, guest_key: str, ip: str, channel_name: str, process: str) -> GuestConnection:
    """Open one guest socket in `space`. Refused (EntryRefused) by ``guest_refusal`` — a Space that
    isn't live, is for signed-in listeners only or sells tickets — and (GuestLimit) when the address
    already has SPACES_GUEST_SOCKETS_PER_IP guest sockets open, in any Space; (RateLimited) when it
    opened SPACES_GUEST_CONNECTS_PER_MINUTE in the last minute."""
    hit(
        f"rooms:guest-connect:{ip}",
        Limit(settings.SPACES_GUEST_CONNECTS_PER_MINUTE, 60),
        "Too many listeners without an account have joined from your network in the last "
        "minute. Wait a minute and reload, or sign in to listen.",
    )
    with transaction.atomic():
        space = Space.objects.get(pk=space.pk)  # no lock: a guest's arrival doesn't touch the stage
        refusal = guest_refusal(space=space)
        if refusal:
            raise SignInRequired(refusal) if space.signed_in_only else EntryRefused(refusal)
        cap = settings.SPACES_GUEST_SOCKETS_PER_IP
        if fresh_guest_connections().filter(ip=ip).count() >= cap:
            raise GuestLimit(
                f"Too many people are listening without an account from your network ({cap} at once). "
                "Close another tab that's listening, or sign in to listen."
            )
        # Two tabs of one guest opening at the very same moment may both count; the sweep's
        # recount corrects that.
        here = fresh_guest_connections().filter(space=space, guest_key=guest_key).exists()
        guest = GuestConnection.objects.create(
            channel_name=channel_name,
            space=space,
            guest_key=guest_key,
            ip=ip,
            process=process,
            seen_at=timezone.now(),
        )
        _publish_listener_count(space, None if here else _audience_add(space.pk, guests=1))
    return guest


def _guest_gone(space: Space, signal_id: int) -> None:
    # Stage members' pages hang up their audio link to this guest's socket on `listeners_left`.
    publish_on_commit(space.pk, {"type": "listener_left", "user_id": signal_id})


def guest_close(*, channel_name: str) -> None:
    """A guest's socket closed: the room hears the new count."""
    with transaction.atomic():
        guest = GuestConnection.objects.filter(channel_name=channel_name).first()
        if guest is None:
            return  # already swept, or the Space ended
        space = Space.objects.get(pk=guest.space_id)
        signal_id = guest.signal_id
        if not GuestConnection.objects.filter(pk=guest.pk).delete()[0]:
            return
        if space.state == Space.State.LIVE:
            _guest_gone(space, signal_id)
            still_here = fresh_guest_connections().filter(space=space, guest_key=guest.guest_key).exists()
            _publish_listener_count(space, None if still_here else _audience_add(space.pk, guests=-1))


def _fresh_guest(space: Space, pk: int) -> GuestConnection | None:
    return (
        fresh_guest_connections()
        .filter(pk=pk, space_id=space.pk, space__state=Space.State.LIVE)
        .only("channel_name")
        .first()
    )


def guest_signal_send(
    *, space: Space, guest: GuestConnection, to: int, kind: str, data: dict[str, Any]
) -> None:
    """A guest's WebRTC signalling: it reaches stage members only (a guest is a listener)."""
    if kind not in protocol.SIGNAL_KINDS:
        raise RoomError("kind must be offer, answer or ice.", code="bad_field")
    if _fresh_guest(space, guest.pk) is None:
        raise NotLive("This Space isn't live any more.")
    target = (
        Participant.objects.filter(space_id=space.pk, user_id=to, removed_at=None)
        .annotate(present=Exists(fresh_connections().filter(participant=OuterRef("pk"))))
        .first()
    )
    if target is None or not target.present:
        raise NotInSpace("That person isn't here right now.")
    if not target.on_stage:
        raise RoomForbidden("Audio only flows between the stage and everyone else.")
    event = {"type": "signal", "from": guest.signal_id, "kind": kind, "data": data}
    publish_on_commit(space.pk, event, to_user=to)
