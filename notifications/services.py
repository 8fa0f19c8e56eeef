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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User

from . import hooks, rules, selectors
from .models import Delivery, EmailPreference, Notification

# Other apps name the kinds of what they send (e.g. "space_live", "ticket_refund").

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
    space_id: int | None = None,
) -> Delivery:
    """Queue one notification for `user`: in-app, plus email unless they opted out.

    Call it inside your own transaction; it is sent after commit once `due_at` (default: now) has
    passed. Passing the same `dedupe_key` again returns the existing row instead of a second message.
    """
    row = delivery_row(
        recipient_id=user.pk,
        kind=kind,
        title=title,
        body=body,
        url=url,
        send_email=send_email,
        dedupe_key=dedupe_key or f"{kind}:{uuid.uuid4().hex}",
        due_at=due_at or timezone.now(),
        space_id=space_id,
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
    space_id: int | None = None,
) -> int:
    """`notify` for a crowd in a few queries. `dedupe_key` is a prefix; each person's key adds their id.

    Returns the number of people queued (those already queued under the same key are not counted twice).
    """
    prefix = dedupe_key or f"{kind}:{uuid.uuid4().hex}"
    when = due_at or timezone.now()
    ids = sorted({u if isinstance(u, int) else u.pk for u in users})
    rows = [
        delivery_row(
            recipient_id=pk,
            kind=kind,
            title=title,
            body=body,
            url=url,
            send_email=send_email,
            dedupe_key=f"{prefix}:{pk}",
            due_at=when,
            space_id=space_id,
        )
        for pk in ids
    ]
    return deliveries_plan(rows=rows)


def delivery_row(*, recipient_id: int, space_id: int | None = None, **fields) -> Delivery:
    """An outbox row, not yet written: hand a list of them to `deliveries_plan`."""
    fields["title"] = fields["title"][:200]
    return Delivery(recipient_id=recipient_id, space_id=space_id, **fields)


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
    *, space_id: int, kinds: Iterable[str], recipient_ids: Iterable[int] | None = None
) -> int:
    """Cancel what is still pending for a Space. Rows already claimed are checked again at send time."""
    qs = Delivery.objects.filter(space_id=space_id, kind__in=list(kinds), status=Delivery.Status.PENDING)
    if recipient_ids is not None:
        qs = qs.filter(recipient_id__in=list(recipient_ids))
    return qs.update(status=Delivery.Status.CANCELLED)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- words -------------------------------------------------------------------


def when_for(*, moment: datetime, tz_name: str) -> str:
    """'Sun 29 Mar 2026, 19:30 CEST': a moment as the person reading it would say it."""
    try:
        zone = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M %Z}"


# --- the in-app list -------------------------------------------------------------


def notifications_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    marked = qs.update(read_at=timezone.now())
    if marked:
        unread_changed(user_id=user.pk)
    return marked


def unread_changed(*, user_id: int) -> None:
    """Forget the cached unread count once the transaction that changed it commits."""
    transaction.on_commit(lambda: cache.delete(selectors.unread_key(user_id)))


def email_opt_out_set(*, user: User, opted_out: bool) -> None:
    EmailPreference.objects.update_or_create(user=user, defaults={"email_opt_out": opted_out})


def email_opted_out(*, user: User) -> bool:
    return EmailPreference.objects.filter(user=user, email_opt_out=True).exists()


# --- one-click links in emails ----------------------------------------------------

STOP_EMAILS = "stop"
RESUME_EMAILS = "resume"


class BadLink(ValidationError):
    """The link was altered, belongs to nobody, or is too old."""


@dataclass(frozen=True)
class LinkOutcome:
    action: str
    user: User
    changed: bool
    # The page that says what happened, and its context.
    template: str = "notifications/email_link_done.html"
    context: dict = field(default_factory=dict)


def email_link_token(*, user_id: int, action: str, space_id: int | None = None) -> str:
    payload = {"u": user_id, "a": action}
    if space_id is not None:
        payload["s"] = space_id
    return signing.dumps(payload, salt=LINK_SALT, compress=True)


def email_link_read(*, token: str) -> tuple[User, str, dict]:
    max_age = timedelta(days=rules.LINK_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise BadLink("This link has expired.", code="expired")
    except signing.BadSignature:
        raise BadLink("This link has been changed or cut short.", code="tampered")
    action = payload.get("a") if isinstance(payload, dict) else None
    if action not in (STOP_EMAILS, RESUME_EMAILS) and action not in hooks.email_link_actions:
        raise BadLink("This link has been changed or cut short.", code="tampered")
    user = User.objects.filter(pk=payload.get("u")).first()
    if user is None:
        raise BadLink("The account this link was for no longer exists.", code="gone")
    return user, action, payload


def email_link_describe(*, token: str) -> tuple[str, dict]:
    """The page that asks before a signed email link does anything, and its context. Raises
    BadLink for a tampered or expired token, or one whose object is gone."""
    user, action, payload = email_link_read(token=token)
    context = {"action": action, "person": user}
    if action in (STOP_EMAILS, RESUME_EMAILS):
        return "notifications/email_link_confirm.html", context
    link = hooks.email_link_actions[action]
    try:
        return link.confirm_template, {**context, **link.describe(user=user, payload=payload)}
    except ValidationError as exc:
        raise BadLink(exc.messages[0], code=exc.code or "gone")


def email_link_apply(*, token: str) -> LinkOutcome:
    """Do what a signed email link says. Raises BadLink for a tampered or expired token, or one
    whose object is gone."""
    user, action, payload = email_link_read(token=token)
    if action in (STOP_EMAILS, RESUME_EMAILS):
        opted_out = action == STOP_EMAILS
        changed = email_opted_out(user=user) != opted_out
        email_opt_out_set(user=user, opted_out=opted_out)
        return LinkOutcome(action=action, user=user, changed=changed)
    try:
        done = hooks.email_link_actions[action].apply(user=user, payload=payload)
    except ValidationError as exc:
        raise BadLink(exc.messages[0], code=exc.code or "gone")
    return LinkOutcome(
        action=action, user=user, changed=done.changed, template=done.template, context=done.context
    )
