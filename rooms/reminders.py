"""Reminders, and what a scheduled Space owes the people who asked to hear about it.

Everything here is planned as rows of the notifications outbox (`notifications.services`), inside
the transaction of the change that causes it: scheduling, moving, cancelling or starting a Space,
and setting or removing a reminder. At send time the outbox asks `outbox_rows_not_owed` (a
notifications hook registered in `RoomsConfig.ready()`) whether a row is still owed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from notifications import services as notifications
from notifications.hooks import LinkAction, LinkDone
from notifications.models import Delivery
from notifications.services import when_for

from . import hooks, rules, selectors
from .models import Reminder, ScheduleRevision, Space

# Kinds of outbox rows this module writes.
SPACE_LIVE = "space_live"  # to the reminded, when the host starts
SPACE_STARTING = "space_starting"  # to the reminded, at the scheduled time if not started
HOST_HEADS_UP = "host_heads_up"  # to the host, before the scheduled time
HOST_START_TIME = "host_start_time"  # to the host, at the scheduled time
SPACE_MOVED = "space_moved"  # to the reminded, when the time changes
SPACE_CANCELLED = "space_cancelled"  # to the reminded, when the host cancels

# Due at a time derived from `scheduled_for`: moved by a reschedule, withdrawn by start or cancel.
TIMED_KINDS = (SPACE_STARTING, HOST_HEADS_UP, HOST_START_TIME)
# What someone gets because they set a reminder; removing the reminder withdraws what is pending.
REMINDER_KINDS = (SPACE_STARTING, SPACE_LIVE, SPACE_MOVED)

# The action of the signed "Remove this reminder" link at the foot of reminder emails.
UNREMIND = "unremind"


def _key(kind: str, space: Space, user_id: int, when: datetime) -> str:
    return f"{kind}:{space.pk}:{user_id}:{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _space_url(space: Space) -> str:
    return f"{settings.SITE_URL}{space.get_absolute_url()}"


def _row(*, recipient_id: int, space: Space, **fields) -> Delivery:
    return notifications.delivery_row(recipient_id=recipient_id, space_id=space.pk, **fields)


def _upcoming_changed() -> None:
    """Cached "Upcoming" lists show scheduled Spaces and reminder counts: forget them once this
    transaction commits."""
    transaction.on_commit(selectors.upcoming_changed)


def _reminded(space: Space) -> list[tuple[int, str]]:
    return list(Reminder.objects.filter(space=space).values_list("user_id", "user__time_zone"))


def _timed_rows_for_reminded(space: Space, people: list[tuple[int, str]]) -> list[Delivery]:
    when = space.scheduled_for
    title = f"Starting now: {space.title}"
    body = f"{space.host.name}'s Space is due to start. If the host hasn't opened it yet, it will be soon."
    return [
        _row(
            recipient_id=pk,
            kind=SPACE_STARTING,
            title=title,
            body=body,
            url=_space_url(space),
            send_email=True,
            dedupe_key=_key(SPACE_STARTING, space, pk, when),
            due_at=when,
            space=space,
        )
        for pk, _tz in people
    ]


def _timed_rows_for_host(space: Space, now: datetime) -> list[Delivery]:
    when = space.scheduled_for
    minutes = rules.HOST_HEADS_UP_MINUTES
    heads_up = when - timedelta(minutes=minutes)
    url = _space_url(space)
    rows = [
        _row(
            recipient_id=space.host_id,
            kind=HOST_START_TIME,
            title=f"It's time: {space.title}",
            body="Your scheduled Space is due to start now. Open it and press Start now.",
            url=url,
            send_email=True,
            dedupe_key=_key(HOST_START_TIME, space, space.host_id, when),
            due_at=when,
            space=space,
        )
    ]
    # Scheduled less than the heads-up ahead: "in 30 minutes" would already be wrong.
    if heads_up > now:
        rows.append(
            _row(
                recipient_id=space.host_id,
                kind=HOST_HEADS_UP,
                title=f"In {minutes} minutes: {space.title}",
                body=f"Your Space starts at {when_for(moment=when, tz_name=space.host.time_zone)}.",
                url=url,
                send_email=True,
                dedupe_key=_key(HOST_HEADS_UP, space, space.host_id, heads_up),
                due_at=heads_up,
                space=space,
            )
        )
    return rows


def _audience_beyond_reminded(space: Space) -> list[tuple[int, str]]:
    """People the apps above rooms name (rooms.hooks.space_audience: ticket holders) hear about moves
    and cancellations too."""
    reminded = set(Reminder.objects.filter(space=space).values_list("user_id", flat=True))
    ids = {pk for provider in hooks.space_audience for pk in provider(space=space) if pk not in reminded}
    return list(User.objects.filter(pk__in=ids).values_list("pk", "time_zone"))


# --- what scheduling, moving, cancelling and starting owe --------------------------


def schedule_planned(*, space: Space) -> None:
    """A Space was scheduled: queue the host's heads-up and start-time notifications."""
    _upcoming_changed()
    ScheduleRevision.objects.get_or_create(space=space)
    notifications.deliveries_plan(rows=_timed_rows_for_host(space, timezone.now()))


def schedule_changed(*, space: Space, moved_from: datetime | None) -> int:
    """A scheduled Space was edited. Re-plan what is due; if its time moved, tell everyone reminded.

    Returns the calendar SEQUENCE after the change.
    """
    _upcoming_changed()
    revision, _ = ScheduleRevision.objects.select_for_update().get_or_create(space=space)
    revision.sequence += 1
    revision.save(update_fields=["sequence", "changed_at"])
    notifications.deliveries_withdraw(space_id=space.pk, kinds=TIMED_KINDS)
    people = _reminded(space)
    notifications.deliveries_plan(
        rows=_timed_rows_for_host(space, timezone.now()) + _timed_rows_for_reminded(space, people)
    )
    if moved_from is not None and moved_from != space.scheduled_for:
        url = _space_url(space)
        now = timezone.now()
        notifications.deliveries_plan(
            rows=[
                _row(
                    recipient_id=pk,
                    kind=SPACE_MOVED,
                    title=f"New time: {space.title}",
                    body=(
                        f"{space.host.name} moved this Space to "
                        f"{when_for(moment=space.scheduled_for, tz_name=tz)}"
                        f" (it was {when_for(moment=moved_from, tz_name=tz)}). Your reminder moved with it."
                    ),
                    url=url,
                    send_email=True,
                    dedupe_key=f"{SPACE_MOVED}:{space.pk}:{revision.sequence}:{pk}",
                    due_at=now,
                    space=space,
                )
                for pk, tz in people + _audience_beyond_reminded(space)
            ]
        )
    return revision.sequence


def schedule_cancelled(*, space: Space, reason: str = "") -> None:
    """A scheduled Space was cancelled: withdraw what is pending and tell everyone reminded."""
    _upcoming_changed()
    revision, _ = ScheduleRevision.objects.select_for_update().get_or_create(space=space)
    revision.sequence += 1
    revision.save(update_fields=["sequence", "changed_at"])
    notifications.deliveries_withdraw(space_id=space.pk, kinds=[*TIMED_KINDS, SPACE_LIVE, SPACE_MOVED])
    now = timezone.now()
    extra = f" The host said: “{reason}”" if reason else ""
    notifications.deliveries_plan(
        rows=[
            _row(
                recipient_id=pk,
                kind=SPACE_CANCELLED,
                title=f"Cancelled: {space.title}",
                body=(
                    f"{space.host.name} cancelled the Space planned for "
                    f"{when_for(moment=space.scheduled_for, tz_name=tz)}.{extra}"
                ),
                url=_space_url(space),
                send_email=True,
                dedupe_key=f"{SPACE_CANCELLED}:{space.pk}:{pk}",
                due_at=now,
                space=space,
            )
            for pk, tz in _reminded(space) + _audience_beyond_reminded(space)
        ]
    )


def space_live_notify(*, space: Space) -> int:
    """The host started the Space: tell everyone reminded, and drop the start-time notifications.

    Idempotent (one row per person per Space), so calling it twice for one start is harmless.
    """
    _upcoming_changed()
    notifications.deliveries_withdraw(space_id=space.pk, kinds=TIMED_KINDS)
    people = _reminded(space)
    started = space.started_at or timezone.now()
    title = f"{space.host.name} is live: {space.title}"
    return notifications.deliveries_plan(
        rows=[
            _row(
                recipient_id=pk,
                kind=SPACE_LIVE,
                title=title,
                body="The Space you asked to be reminded about has started. Tap to join.",
                url=_space_url(space),
                send_email=True,
                dedupe_key=f"{SPACE_LIVE}:{space.pk}:{pk}",
                due_at=started,
                space=space,
            )
            for pk, _tz in people
        ]
    )


# --- reminders -------------------------------------------------------------------


def reminder_set(*, user: User, space: Space) -> bool:
    """Ask to be told when `space` starts. Returns False if the reminder was already set."""
    _upcoming_changed()
    if not user.is_authenticated:
        raise PermissionDenied("Sign in to set a reminder.")
    if space.state != Space.State.SCHEDULED:
        raise ValidationError("This Space isn't scheduled any more, so there is nothing to remind you of.")
    if space.host_id == user.pk:
        raise ValidationError("You're the host: you'll hear 30 minutes before and at the start time.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                Reminder.objects.create(user=user, space=space)
        except IntegrityError:
            return False
        notifications.deliveries_plan(rows=_timed_rows_for_reminded(space, [(user.pk, user.time_zone)]))
    return True


def reminder_set_many(*, space: Space, user_ids: Iterable[int]) -> int:
    """`reminder_set` for a crowd (imports, ticket buyers, benchmarks). Returns how many were new."""
    _upcoming_changed()
    if space.state != Space.State.SCHEDULED:
        raise ValidationError("This Space isn't scheduled any more, so there is nothing to remind you of.")
    ids = sorted(set(user_ids) - {space.host_id})
    with transaction.atomic():
        before = Reminder.objects.filter(space=space).count()
        Reminder.objects.bulk_create(
            [Reminder(user_id=pk, space=space) for pk in ids], ignore_conflicts=True, batch_size=1000
        )
        people = []
        for i in range(0, len(ids), 900):
            people += list(User.objects.filter(pk__in=ids[i : i + 900]).values_list("pk", "time_zone"))
        notifications.deliveries_plan(rows=_timed_rows_for_reminded(space, people))
        return Reminder.objects.filter(space=space).count() - before


def reminder_remove(*, user: User, space: Space) -> bool:
    """Stop being reminded about `space`. Returns False if there was no reminder."""
    _upcoming_changed()
    with transaction.atomic():
        deleted, _ = Reminder.objects.filter(user=user, space=space).delete()
        notifications.deliveries_withdraw(space_id=space.pk, kinds=REMINDER_KINDS, recipient_ids=[user.pk])
    return bool(deleted)


# --- the outbox's questions (notifications.hooks, registered in RoomsConfig.ready) ------------


def outbox_rows_not_owed(rows: list[Delivery]) -> set[int]:
    """Rows that things changed under between queueing and sending: a start-time notice for a
    Space that started or was cancelled, an "is live" for one no longer live, or a notice owed only
    to a reminder that was since removed."""
    ours = [r for r in rows if r.space_id and r.kind in (*TIMED_KINDS, SPACE_LIVE)]
    if not ours:
        return set()
    states = dict(Space.objects.filter(pk__in={r.space_id for r in ours}).values_list("pk", "state"))
    reminded = set(
        Reminder.objects.filter(
            space_id__in={r.space_id for r in ours}, user_id__in={r.recipient_id for r in ours}
        ).values_list("user_id", "space_id")
    )
    gone = set()
    for r in ours:
        wanted = Space.State.LIVE if r.kind == SPACE_LIVE else Space.State.SCHEDULED
        if states.get(r.space_id) != wanted or (
            r.kind in (SPACE_STARTING, SPACE_LIVE) and (r.recipient_id, r.space_id) not in reminded
        ):
            gone.add(r.pk)
    return gone


def email_unremind_link(delivery: Delivery) -> list[tuple[str, str]]:
    if delivery.kind not in REMINDER_KINDS or not delivery.space_id:
        return []
    token = notifications.email_link_token(
        user_id=delivery.recipient_id, action=UNREMIND, space_id=delivery.space_id
    )
    return [("Remove this reminder", settings.SITE_URL + reverse("notifications:email_link", args=[token]))]


def _linked_space(payload: dict) -> Space:
    space = Space.objects.select_related("host").filter(pk=payload.get("s")).first()
    if space is None:
        raise ValidationError("That Space no longer exists, so there is no reminder to remove.", code="gone")
    return space


def _unremind(*, user: User, payload: dict) -> LinkDone:
    space = _linked_space(payload)
    changed = reminder_remove(user=user, space=space)
    return LinkDone(changed=changed, template="rooms/reminder_removed.html", context={"space": space})


# The "Remove this reminder" link: opening it asks, its button removes the reminder.
EMAIL_UNREMIND = LinkAction(
    confirm_template="rooms/reminder_remove_confirm.html",
    describe=lambda *, user, payload: {"space": _linked_space(payload)},
    apply=_unremind,
)
