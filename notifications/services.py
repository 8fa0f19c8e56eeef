"""Every write to reminders, notifications and the outbox goes through here.

Other apps call `notify` / `notify_many` to tell someone something (in-app, and by email unless
they opted out). Nothing is sent here: a `Delivery` row is written in the caller's transaction and
the Celery sweep (`notifications.tasks`) sends it once it is due, so a rolled-back change never
sends anything and a restart forgets nothing.
"""

from __future__ import annotations

import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from rooms.models import Space

from . import hooks, rules
from .models import Delivery, EmailPreference, Notification, Reminder, ScheduleRevision

# Kinds this app writes. Other apps pass their own (e.g. "ticket_refund", "report_outcome").
SPACE_LIVE = "space_live"  # to the reminded, when the host starts
SPACE_STARTING = "space_starting"  # to the reminded, at the scheduled time if not started
HOST_HEADS_UP = "host_heads_up"  # to the host, 30 minutes before
HOST_START_TIME = "host_start_time"  # to the host, at the scheduled time
SPACE_MOVED = "space_moved"  # to the reminded, when the time changes
SPACE_CANCELLED = "space_cancelled"  # to the reminded, when the host cancels

# Due at a time derived from `scheduled_for`: moved by a reschedule, withdrawn by start or cancel.
TIMED_KINDS = (SPACE_STARTING, HOST_HEADS_UP, HOST_START_TIME)
# What someone gets because they set a reminder; removing the reminder withdraws what is pending.
REMINDER_KINDS = (SPACE_STARTING, SPACE_LIVE, SPACE_MOVED)

LINK_SALT = "notifications.email-link"


# --- the public outbox API ----------------------------------------------------


def notify(
    *,
    user: User,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    send_email: bool = True,
    dedupe_key: str | None = None,
    due_at: datetime | None = None,
    space: Space | None = None,
) -> Delivery:
    """Queue one notification for `user`: in-app, plus email unless they opted out.

    Call it inside your own transaction; it is sent after commit once `due_at` (default: now) has
    passed. Passing the same `dedupe_key` again returns the existing row instead of a second message.
    """
    row = _row(
        recipient_id=user.pk,
        kind=kind,
        title=title,
        body=body,
        url=url,
        send_email=send_email,
        dedupe_key=dedupe_key or f"{kind}:{uuid.uuid4().hex}",
        due_at=due_at or timezone.now(),
        space=space,
    )
    deliveries_plan(rows=[row])
    return Delivery.objects.get(dedupe_key=row.dedupe_key)


def notify_many(
    *,
    users: Iterable[User] | Iterable[int],
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    send_email: bool = True,
    dedupe_key: str | None = None,
    due_at: datetime | None = None,
    space: Space | None = None,
) -> int:
    """`notify` for a crowd in a few queries. `dedupe_key` is a prefix; each person's key adds their id.

    Returns the number of people queued (those already queued under the same key are not counted twice).
    """
    prefix = dedupe_key or f"{kind}:{uuid.uuid4().hex}"
    when = due_at or timezone.now()
    ids = sorted({u if isinstance(u, int) else u.pk for u in users})
    rows = [
        _row(
            recipient_id=pk,
            kind=kind,
            title=title,
            body=body,
            url=url,
            send_email=send_email,
            dedupe_key=f"{prefix}:{pk}",
            due_at=when,
            space=space,
        )
        for pk in ids
    ]
    return deliveries_plan(rows=rows)


def _row(*, recipient_id: int, space: Space | None, **fields) -> Delivery:
    fields["title"] = fields["title"][:200]
    return Delivery(recipient_id=recipient_id, space_id=space.pk if space else None, **fields)


def deliveries_plan(*, rows: list[Delivery]) -> int:
    """Write outbox rows, idempotently by dedupe key. Returns how many are now pending.

    A row that exists as pending or sent is left alone (never sent twice). A row that exists as
    cancelled comes back to pending with the new text: a Space moved away and back again owes its
    reminder again.
    """
    if not rows:
        return 0
    Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    keys = [r.dedupe_key for r in rows]
    revived: dict[tuple, list[str]] = defaultdict(list)
    for r in rows:
        revived[(r.title, r.body, r.url, r.due_at, r.send_email)].append(r.dedupe_key)
    for (title, body, url, due_at, send_email), group in revived.items():
        for chunk in _chunks(group, 900):
            Delivery.objects.filter(dedupe_key__in=chunk, status=Delivery.Status.CANCELLED).update(
                status=Delivery.Status.PENDING,
                title=title[:200],
                body=body,
                url=url,
                due_at=due_at,
                send_email=send_email,
                enqueued_at=None,
                claimed_at=None,
                claim_token="",
            )
    pending = 0
    for chunk in _chunks(keys, 900):
        pending += Delivery.objects.filter(dedupe_key__in=chunk, status=Delivery.Status.PENDING).count()
    return pending


def deliveries_withdraw(
    *, space: Space, kinds: Iterable[str], recipient_ids: Iterable[int] | None = None
) -> int:
    """Cancel what is still pending for a Space. Rows already claimed are checked again at send time."""
    qs = Delivery.objects.filter(space=space, kind__in=list(kinds), status=Delivery.Status.PENDING)
    if recipient_ids is not None:
        qs = qs.filter(recipient_id__in=list(recipient_ids))
    return qs.update(status=Delivery.Status.CANCELLED)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _key(kind: str, space: Space, user_id: int, when: datetime) -> str:
    return f"{kind}:{space.pk}:{user_id}:{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"


# --- words -------------------------------------------------------------------


def when_for(*, moment: datetime, tz_name: str) -> str:
    """'Sun 29 Mar 2026, 19:30 CEST': a moment as the person reading it would say it."""
    try:
        zone = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M %Z}"


def _space_url(space: Space) -> str:
    return f"{settings.SITE_URL}{space.get_absolute_url()}"


def _host_name(space: Space) -> str:
    return space.host.name


# --- scheduling hooks (called by rooms.scheduling and rooms.services) ----------


def _reminded(space: Space) -> list[tuple[int, str]]:
    return list(Reminder.objects.filter(space=space).values_list("user_id", "user__time_zone"))


def _timed_rows_for_reminded(space: Space, people: list[tuple[int, str]]) -> list[Delivery]:
    when = space.scheduled_for
    title = f"Starting now: {space.title}"
    body = f"{_host_name(space)}'s Space is due to start. If the host hasn't opened it yet, it will be soon."
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


def schedule_planned(*, space: Space) -> None:
    """A Space was scheduled: queue the host's heads-up and start-time notifications."""
    ScheduleRevision.objects.get_or_create(space=space)
    deliveries_plan(rows=_timed_rows_for_host(space, timezone.now()))


def schedule_changed(*, space: Space, moved_from: datetime | None) -> int:
    """A scheduled Space was edited. Re-plan what is due; if its time moved, tell everyone reminded.

    Returns the calendar SEQUENCE after the change.
    """
    revision, _ = ScheduleRevision.objects.select_for_update().get_or_create(space=space)
    revision.sequence += 1
    revision.save(update_fields=["sequence", "changed_at"])
    deliveries_withdraw(space=space, kinds=TIMED_KINDS)
    people = _reminded(space)
    deliveries_plan(
        rows=_timed_rows_for_host(space, timezone.now()) + _timed_rows_for_reminded(space, people)
    )
    if moved_from is not None and moved_from != space.scheduled_for:
        url = _space_url(space)
        now = timezone.now()
        deliveries_plan(
            rows=[
                _row(
                    recipient_id=pk,
                    kind=SPACE_MOVED,
                    title=f"New time: {space.title}",
                    body=(
                        f"{_host_name(space)} moved this Space to "
                        f"{when_for(moment=space.scheduled_for, tz_name=tz)}"
                        f" (it was {when_for(moment=moved_from, tz_name=tz)}). Your reminder moved with it."
                    ),
                    url=url,
                    send_email=True,
                    dedupe_key=f"{SPACE_MOVED}:{space.pk}:{revision.sequence}:{pk}",
                    due_at=now,
                    space=space,
                )
                for pk, tz in people + _ticket_holders(space)
            ]
        )
    return revision.sequence


def schedule_cancelled(*, space: Space, reason: str = "") -> None:
    """A scheduled Space was cancelled: withdraw what is pending and tell everyone reminded."""
    revision, _ = ScheduleRevision.objects.select_for_update().get_or_create(space=space)
    revision.sequence += 1
    revision.save(update_fields=["sequence", "changed_at"])
    deliveries_withdraw(space=space, kinds=[*TIMED_KINDS, SPACE_LIVE, SPACE_MOVED])
    now = timezone.now()
    extra = f" The host said: “{reason}”" if reason else ""
    deliveries_plan(
        rows=[
            _row(
                recipient_id=pk,
                kind=SPACE_CANCELLED,
                title=f"Cancelled: {space.title}",
                body=(
                    f"{_host_name(space)} cancelled the Space planned for "
                    f"{when_for(moment=space.scheduled_for, tz_name=tz)}.{extra}"
                ),
                url=_space_url(space),
                send_email=True,
                dedupe_key=f"{SPACE_CANCELLED}:{space.pk}:{pk}",
                due_at=now,
                space=space,
            )
            for pk, tz in _reminded(space) + _ticket_holders(space)
        ]
    )


def space_live_notify(*, space: Space) -> int:
    """The host started the Space: tell everyone reminded, and drop the start-time notifications.

    Idempotent (one row per person per Space), so calling it twice for one start is harmless.
    """
    deliveries_withdraw(space=space, kinds=TIMED_KINDS)
    people = _reminded(space)
    started = space.started_at or timezone.now()
    title = f"{_host_name(space)} is live: {space.title}"
    return deliveries_plan(
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


def _ticket_holders(space: Space) -> list[tuple[int, str]]:
    """People the apps above name (notifications.hooks: ticket holders) hear about moves and
    cancellations too."""
    reminded = set(Reminder.objects.filter(space=space).values_list("user_id", flat=True))
    ids = {pk for provider in hooks.space_audience for pk in provider(space=space) if pk not in reminded}
    return list(User.objects.filter(pk__in=ids).values_list("pk", "time_zone"))


# --- reminders -------------------------------------------------------------------


def reminder_set(*, user: User, space: Space) -> bool:
    """Ask to be told when `space` starts. Returns False if the reminder was already set."""
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
        deliveries_plan(rows=_timed_rows_for_reminded(space, [(user.pk, user.time_zone)]))
    return True


def reminder_set_many(*, space: Space, user_ids: Iterable[int]) -> int:
    """`reminder_set` for a crowd (imports, ticket buyers, benchmarks). Returns how many were new."""
    if space.state != Space.State.SCHEDULED:
        raise ValidationError("This Space isn't scheduled any more, so there is nothing to remind you of.")
    ids = sorted(set(user_ids) - {space.host_id})
    with transaction.atomic():
        before = Reminder.objects.filter(space=space).count()
        Reminder.objects.bulk_create(
            [Reminder(user_id=pk, space=space) for pk in ids], ignore_conflicts=True, batch_size=1000
        )
        people = []
        for chunk in _chunks(ids, 900):
            people += list(User.objects.filter(pk__in=chunk).values_list("pk", "time_zone"))
        deliveries_plan(rows=_timed_rows_for_reminded(space, people))
        return Reminder.objects.filter(space=space).count() - before


def reminder_remove(*, user: User, space: Space) -> bool:
    """Stop being reminded about `space`. Returns False if there was no reminder."""
    with transaction.atomic():
        deleted, _ = Reminder.objects.filter(user=user, space=space).delete()
        deliveries_withdraw(space=space, kinds=REMINDER_KINDS, recipient_ids=[user.pk])
    return bool(deleted)


# --- the in-app list -------------------------------------------------------------


def notifications_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())


def email_opt_out_set(*, user: User, opted_out: bool) -> None:
    EmailPreference.objects.update_or_create(user=user, defaults={"email_opt_out": opted_out})


def email_opted_out(*, user: User) -> bool:
    return EmailPreference.objects.filter(user=user, email_opt_out=True).exists()


# --- one-click links in emails ----------------------------------------------------

UNREMIND = "unremind"
STOP_EMAILS = "stop"
RESUME_EMAILS = "resume"


class BadLink(ValidationError):
    """The link was altered, belongs to nobody, or is too old."""


@dataclass(frozen=True)
class LinkOutcome:
    action: str
    user: User
    space: Space | None
    changed: bool


def email_link_token(*, user_id: int, action: str, space_id: int | None = None) -> str:
    payload = {"u": user_id, "a": action}
    if space_id is not None:
        payload["s"] = space_id
    return signing.dumps(payload, salt=LINK_SALT, compress=True)


def email_link_read(*, token: str) -> tuple[User, str, Space | None]:
    max_age = timedelta(days=rules.LINK_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise BadLink("This link has expired.", code="expired")
    except signing.BadSignature:
        raise BadLink("This link has been changed or cut short.", code="tampered")
    action = payload.get("a")
    if action not in (UNREMIND, STOP_EMAILS, RESUME_EMAILS):
        raise BadLink("This link has been changed or cut short.", code="tampered")
    user = User.objects.filter(pk=payload.get("u")).first()
    if user is None:
        raise BadLink("The account this link was for no longer exists.", code="gone")
    space = None
    if action == UNREMIND:
        space = Space.objects.select_related("host").filter(pk=payload.get("s")).first()
        if space is None:
            raise BadLink("That Space no longer exists, so there is no reminder to remove.", code="gone")
    return user, action, space


def email_link_apply(*, token: str) -> LinkOutcome:
    """Do what a signed email link says. Raises BadLink for a tampered or expired token."""
    user, action, space = email_link_read(token=token)
    if action == UNREMIND:
        changed = reminder_remove(user=user, space=space)
    else:
        opted_out = action == STOP_EMAILS
        changed = email_opted_out(user=user) != opted_out
        email_opt_out_set(user=user, opted_out=opted_out)
    return LinkOutcome(action=action, user=user, space=space, changed=changed)
