"""Scheduling Spaces: plan one ahead, move it, cancel it, or start it early.

Times are stored in UTC. A host types a wall-clock time in their own time zone (`local_to_utc`);
every viewer sees it in theirs. What people are told, and when, is planned in
`rooms.reminders` inside the same transaction.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import hooks as account_hooks
from accounts.models import User
from accounts.selectors import is_moderator
from accounts.services import hosting_ensure_allowed
from accounts.validators import has_control_characters

from . import hooks, reminders, rules
from .models import Space, validate_topics
from .services import RoomError, space_start


def local_to_utc(*, local: datetime, tz_name: str) -> datetime:
    """Turn a wall-clock time typed in `tz_name` into an aware UTC datetime.

    A time skipped by a daylight-saving change (02:30 on the last Sunday of March in Madrid) does
    not exist and is refused; a time that happens twice (02:30 on the last Sunday of October) is
    read as the first of the two, as calendars do.
    """
    if timezone.is_aware(local):
        return local.astimezone(UTC)
    zone = zoneinfo.ZoneInfo(tz_name or "UTC")
    aware = local.replace(tzinfo=zone, fold=0)
    as_utc = aware.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) != local:
        raise ValidationError(
            f"{local:%H:%M} doesn't exist on {local.day} {local:%B} in {tz_name}: "
            "the clocks change that night. Pick a time an hour later.",
            code="nonexistent_time",
        )
    return as_utc


def upcoming_count(*, host: User, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return Space.objects.filter(host=host, state=Space.State.SCHEDULED, scheduled_for__gte=now).count()


def _check_time(scheduled_for: datetime, now: datetime) -> None:
    if timezone.is_naive(scheduled_for):
        raise ValidationError("The start time needs a time zone.")
    if scheduled_for <= now:
        raise ValidationError("Pick a start time in the future.", code="past")
    days = rules.SCHEDULE_MAX_DAYS
    if scheduled_for > now + timedelta(days=days):
        raise ValidationError(
            f"You can schedule up to {days} days ahead. Pick an earlier date.", code="too_far"
        )


def _clean_title_topics(title: str, topics: list[str]) -> tuple[str, list[str]]:
    title = (title or "").strip()
    if not title:
        raise ValidationError("Give your Space a title.", code="title")
    if len(title) > Space._meta.get_field("title").max_length:
        raise ValidationError("Keep the title to 70 characters.", code="title")
    if has_control_characters(title):
        raise ValidationError(
            "Use one line of text, without line breaks or control characters.", code="title"
        )
    topics = [t.strip() for t in topics if t and t.strip()]
    validate_topics(topics)
    return title, topics


def space_schedule(
    *,
    host: User,
    title: str,
    scheduled_for: datetime,
    topics: list[str] | None = None,
    speak_policy: str = Space.SpeakPolicy.EVERYONE,
) -> Space:
    """Schedule a Space. The host must be allowed to host, within the days-ahead and upcoming limits."""
    hosting_ensure_allowed(user=host)
    title, topics = _clean_title_topics(title, topics or [])
    now = timezone.now()
    _check_time(scheduled_for, now)
    with transaction.atomic():
        # Serialise one host's scheduling, so two tabs can't both take the last upcoming slot.
        User.objects.select_for_update().filter(pk=host.pk).first()
        limit = rules.SCHEDULE_MAX_UPCOMING
        if upcoming_count(host=host, now=now) >= limit:
            raise ValidationError(
                f"You already have {limit} upcoming Spaces, the most you can have. "
                "Cancel one or wait until one has happened.",
                code="too_many",
            )
        space = Space.objects.create(
            host=host,
            title=title,
            topics=topics,
            speak_policy=speak_policy,
            state=Space.State.SCHEDULED,
            scheduled_for=scheduled_for,
        )
        reminders.schedule_planned(space=space)
    return space


def _ensure_host(space: Space, by: User) -> None:
    if space.host_id == by.pk:
        return
    raise PermissionDenied("Only the host can change this Space.")


def _locked(space: Space) -> Space:
    return Space.objects.select_for_update(no_key=True).select_related("host").get(pk=space.pk)


def _ensure_scheduled(space: Space) -> None:
    if space.state != Space.State.SCHEDULED:
        raise ValidationError(
            f"This Space is {space.get_state_display().lower()}, so it can't be changed.",
            code="not_scheduled",
        )


def space_reschedule(
    *,
    space: Space,
    by: User,
    scheduled_for: datetime | None = None,
    title: str | None = None,
    topics: list[str] | None = None,
) -> Space:
    """Edit a scheduled Space. Moving it moves every pending reminder and tells everyone reminded."""
    _ensure_host(space, by)
    with transaction.atomic():
        space = _locked(space)
        _ensure_scheduled(space)
        new_title, new_topics = _clean_title_topics(
            space.title if title is None else title, space.topics if topics is None else topics
        )
        moved_from = None
        if scheduled_for is not None and scheduled_for != space.scheduled_for:
            _check_time(scheduled_for, timezone.now())
            moved_from = space.scheduled_for
            space.scheduled_for = scheduled_for
        if moved_from is None and (new_title, new_topics) == (space.title, space.topics):
            return space
        space.title, space.topics = new_title, new_topics
        space.save(update_fields=["title", "topics", "scheduled_for", "updated_at"])
        reminders.schedule_changed(space=space, moved_from=moved_from)
    return space


def space_cancel(*, space: Space, by: User, reason: str = "", audit_note: str = "") -> Space:
    """Cancel a scheduled Space: pending reminders are withdrawn, everyone reminded or holding a
    ticket is told, and tickets are refunded. Its host may; so may a moderator with the permission
    to end Spaces (`rooms.end_space`), whose cancellation is audited."""
    if space.host_id != by.pk and not is_moderator(user=by, perm="rooms.end_space"):
        raise PermissionDenied("Only the host or a moderator who can end Spaces can cancel this Space.")
    with transaction.atomic():
        space = _locked(space)
        _ensure_scheduled(space)
        space.state = Space.State.CANCELLED
        space.ended_at = timezone.now()
        space.ended_reason = "cancelled" if space.host_id == by.pk else "cancelled_by_staff"
        space.save(update_fields=["state", "ended_at", "ended_reason", "updated_at"])
        reminders.schedule_cancelled(space=space, reason=reason.strip()[:300])
        if space.host_id != by.pk:
            account_hooks.moderator_acted.send(
                sender=Space, by=by, action="space_end", target=space, note=audit_note or reason[:300]
            )
        # Apps above rooms react in this transaction (ticketing refunds tickets after it commits).
        hooks.space_cancelled.send(
            sender=Space, space=space, by=by, reason="cancelled" if space.host_id == by.pk else "moderator"
        )
    return space


def space_start_early(*, space: Space, by: User) -> Space:
    """The host's "Start now" on a scheduled Space, at or before its time.

    The live Spaces service owns what starting means (stage, presence, events, telling everyone
    reminded); this checks what only a scheduled Space needs first.
    """
    _ensure_host(space, by)
    hosting_ensure_allowed(user=by)
    _ensure_scheduled(space)
    try:
        return space_start(space=space, by=by)
    except RoomError as exc:  # e.g. already live in another Space: a message for the host
        raise ValidationError(str(exc), code=getattr(exc, "code", "conflict")) from exc
