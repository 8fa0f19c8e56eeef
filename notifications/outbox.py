"""Draining the outbox: find what is due, claim one row at a time, send it, record it.

Guarantee: every due row is sent, and in all but one narrow case exactly once.

* Overlapping sweeps, a retried task, a redelivered message or two workers racing for a row
  cannot both send it: a send starts with a conditional UPDATE (pending → claimed, WHERE status is
  still pending) and only the worker whose UPDATE changed the row goes on.
* A worker killed after claiming but before handing the email to the SMTP server leaves the row
  "claimed". After NOTIFICATIONS_CLAIM_TIMEOUT the sweep re-enqueues it and the next claim takes it
  over, so it is sent exactly once.
* The one window left: the SMTP server accepted the message and the worker died before its
  `status=sent` commit (a few milliseconds per message). The row is sent again after the timeout.
  We chose at-least-once here — a lost "is live" or "cancelled" notice is worse than a rare
  duplicate — and every retry carries the same Message-ID (`<delivery-<pk>@host>`), so mail
  systems that de-duplicate by Message-ID collapse the pair.
* The in-app notification never waits for email: it is written when the row is first claimed,
  before any email is tried, and keyed one-to-one on the row, so a retried or failed email neither
  loses nor doubles it. Email retries are for the email only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta
from urllib.parse import urlparse

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.validators import one_line

from . import hooks, rules, selectors, services
from .groups import user_group
from .models import Delivery, EmailPreference, Notification

log = logging.getLogger(__name__)


# --- the sweep -----------------------------------------------------------------


def outbox_sweep(*, now: datetime | None = None) -> list[list[int]]:
    """Mark due rows as enqueued and return their ids in batches for `send_batch` tasks.

    Picks rows that are due and never enqueued, rows enqueued so long ago that their task message
    must be lost, and rows claimed by a worker that has not finished within the claim timeout.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT)
    due = (
        Delivery.objects.filter(due_at__lte=now)
        .filter(
            Q(status=Delivery.Status.PENDING, enqueued_at__isnull=True)
            | Q(status=Delivery.Status.PENDING, enqueued_at__lt=stale)
            | Q(status=Delivery.Status.CLAIMED, claimed_at__lt=stale)
        )
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[: settings.NOTIFICATIONS_SWEEP_LIMIT]
    )
    ids = list(due)
    for chunk in services._chunks(ids, 900):
        Delivery.objects.filter(pk__in=chunk).update(enqueued_at=now)
    size = max(1, settings.NOTIFICATIONS_BATCH_SIZE)
    return [ids[i : i + size] for i in range(0, len(ids), size)]


# --- one send --------------------------------------------------------------------


@contextmanager
def _outbox_transaction():
    """A transaction for claim and sent marks that does not wait for the disk on PostgreSQL.

    `synchronous_commit = off` for these rows only: a worker crash loses nothing (the commit is in
    the server), and a database crash can forget at most the last few hundred milliseconds of
    marks, which makes those rows pending again: sent twice, never lost. That is the same side of
    the trade-off as the rest of the outbox, and it takes a disk flush off every message.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _claimable(now: datetime) -> Q:
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT)
    return Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.CLAIMED, claimed_at__lt=stale)


def deliveries_claim(*, ids: list[int], now: datetime | None = None) -> list[Delivery]:
    """Take the due, unclaimed rows among `ids` for this worker, in one conditional UPDATE.

    Rows another worker holds (or that are sent, cancelled or not yet due) are left out. The claim
    is a lease of NOTIFICATIONS_CLAIM_TIMEOUT seconds, renewed by `send_batch` while it works.
    """
    now = now or timezone.now()
    token = uuid.uuid4().hex
    with _outbox_transaction():
        taken = (
            Delivery.objects.filter(pk__in=ids, due_at__lte=now)
            .filter(_claimable(now))
            .update(
                status=Delivery.Status.CLAIMED, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
            )
        )
    if not taken:
        return []
    return list(
        Delivery.objects.filter(pk__in=ids, claim_token=token, status=Delivery.Status.CLAIMED).order_by(
            "due_at", "pk"
        )
    )


def deliveries_send_now(*, rows: list[Delivery]) -> dict[str, int]:
    """Write new outbox rows and send them in this call, for a writer that would otherwise write
    rows and claim them straight back (the go-live fan-out: hundreds of rows per chunk).

    The rows go in already claimed by this call (one bulk insert, no claim UPDATE, no re-read of
    the people), so no sweep or other worker sends them meanwhile. A row whose dedupe key already
    exists is left to whoever wrote it. If this worker dies before it has sent them, its rows stay
    claimed and the sweep takes them over after NOTIFICATIONS_CLAIM_TIMEOUT, like any other claim.
    """
    if not rows:
        return {}
    now = timezone.now()
    token = uuid.uuid4().hex
    for row in rows:
        row.status = Delivery.Status.CLAIMED
        row.claimed_at = now
        row.claim_token = token
        row.enqueued_at = now
        row.attempts = 1
    with _outbox_transaction():
        Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    # bulk_create with ignore_conflicts sets no primary keys: read back which rows are ours (a key
    # that existed belongs to another row, with another token) and give them their ids.
    ours: dict[str, int] = {}
    for keys in services._chunks([r.dedupe_key for r in rows], 900):
        ours.update(
            Delivery.objects.filter(dedupe_key__in=keys, claim_token=token).values_list("dedupe_key", "pk")
        )
    mine = sorted((r for r in rows if r.dedupe_key in ours), key=lambda r: ours[r.dedupe_key])
    for row in mine:
        row.pk = ours[row.dedupe_key]
    counts: Counter[str] = Counter(skipped=len(rows) - len(mine))
    return _send_claimed(mine, counts)


def delivery_claim(*, pk: int, now: datetime | None = None) -> Delivery | None:
    """Take one row for this worker, or None if someone else has it or it is not due."""
    rows = deliveries_claim(ids=[pk], now=now)
    return rows[0] if rows else None


def _finish(delivery: Delivery, **fields) -> int:
    """Write the outcome, but only while the claim is still ours."""
    return Delivery.objects.filter(
        pk=delivery.pk, status=Delivery.Status.CLAIMED, claim_token=delivery.claim_token
    ).update(**fields)


def _renew(rows: list[Delivery]) -> set[int]:
    """Extend our lease on rows not yet sent; returns the ones still ours."""
    if not rows:
        return set()
    token = rows[0].claim_token
    pks = [r.pk for r in rows]
    with _outbox_transaction():
        Delivery.objects.filter(pk__in=pks, claim_token=token, status=Delivery.Status.CLAIMED).update(
            claimed_at=timezone.now()
        )
    return set(
        Delivery.objects.filter(pk__in=pks, claim_token=token, status=Delivery.Status.CLAIMED).values_list(
            "pk", flat=True
        )
    )


def _opted_out(rows: list[Delivery]) -> set[int]:
    users = {r.recipient_id for r in rows if r.send_email}
    return set(
        EmailPreference.objects.filter(user_id__in=users, email_opt_out=True).values_list(
            "user_id", flat=True
        )
    )


def _site_host() -> str:
    return urlparse(settings.SITE_URL).hostname or "spaces.localhost"


def build_email(delivery: Delivery) -> EmailMultiAlternatives:
    user = delivery.recipient
    stop_url = settings.SITE_URL + reverse(
        "notifications:email_link",
        args=[services.email_link_token(user_id=user.pk, action=services.STOP_EMAILS)],
    )
    context = {
        "delivery": delivery,
        "user": user,
        "stop_url": stop_url,
        # Links the apps above add ("Remove this reminder"), before "Stop these emails".
        "footer_links": hooks.footer_links(delivery),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        # Whatever was stored (an old title with a line break), a subject is one line: a header
        # with CR/LF would fail every send with BadHeaderError.
        subject=one_line(delivery.title),
        body=render_to_string("notifications/email.txt", context),
        to=[user.email],
        headers={
            # Same id on every retry, so a duplicate after a crash is recognisable as one.
            "Message-ID": f"<delivery-{delivery.pk}@{_site_host()}>",
            "List-Unsubscribe": f"<{stop_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Spaces-Kind": delivery.kind,
        },
    )
    message.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    return message


def _event(notification: Notification, unread: int | None) -> dict:
    event = {
        "type": "notification.new",
        "notification": {
            "id": notification.pk,
            "kind": notification.kind,
            "title": notification.title,
            "body": notification.body,
            "url": notification.url,
        },
    }
    if unread is not None:
        # The bell shows this instead of counting again: a thousand open bells told at once
        # would otherwise queue a thousand COUNT queries behind daphne's database thread.
        event["unread"] = unread
    return event


def _unread_counts(user_ids: set[int]) -> dict[int, int]:
    rows = (
        Notification.objects.filter(user_id__in=user_ids, read_at__isnull=True)
        .values("user_id")
        .annotate(n=Count("pk"))
        .values_list("user_id", "n")
    )
    return dict(rows)


def push(*, notifications: list[Notification], online: set[int]) -> None:
    """Tell the people's open tabs, if any, in one event loop. Best effort: the list page is the record.

    Only people whose bell socket marked them online (`online`, from `selectors.online_among`)
    are sent anything: a go-live chunk of 500 followers, most of them away, costs a group_send per
    person who is looking, not per person. Each event carries the person's unread count.
    """
    layer = get_channel_layer()
    if layer is None or not notifications:
        return
    notifications = [n for n in notifications if n.user_id in online]
    if not notifications:
        return
    unread = _unread_counts(online)

    async def send_all():
        await asyncio.gather(
            *(
                layer.group_send(user_group(n.user_id), _event(n, unread.get(n.user_id)))
                for n in notifications
            )
        )

    try:
        async_to_sync(send_all)()
    except Exception:  # a dead channel layer must not fail sends that already happened
        log.warning("could not push %s notifications", len(notifications), exc_info=True)


class LazyConnection:
    """One SMTP connection per batch, opened only if some row in it needs email."""

    def __init__(self):
        self._conn = None

    def send(self, message: EmailMultiAlternatives) -> None:
        if self._conn is None:
            self._conn = get_connection()
            self._conn.open()
        try:
            self._conn.send_messages([message]) or self._raise_unsent()
        except Exception:
            self.close()
            raise

    @staticmethod
    def _raise_unsent():
        raise RuntimeError("the mail backend accepted nothing")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing the mail connection failed", exc_info=True)
            self._conn = None


def _retry_later(delivery: Delivery, error: Exception) -> None:
    if delivery.attempts >= rules.MAX_ATTEMPTS:
        _finish(delivery, status=Delivery.Status.FAILED, last_error=repr(error)[:2000])
        log.error("giving up on delivery %s after %s attempts: %r", delivery.pk, delivery.attempts, error)
        return
    backoff = timedelta(seconds=min(3600, 30 * 2 ** (delivery.attempts - 1)))
    _finish(
        delivery,
        status=Delivery.Status.PENDING,
        due_at=timezone.now() + backoff,
        enqueued_at=None,
        claim_token="",
        last_error=repr(error)[:2000],
    )
    log.warning(
        "delivery %s failed (attempt %s), retrying in %s: %r", delivery.pk, delivery.attempts, backoff, error
    )


def _notice_write(delivery: Delivery) -> Notification | None:
    """Write the row's in-app notification if it has none yet; returns it only when new."""
    with _outbox_transaction():
        notification, created = Notification.objects.get_or_create(
            delivery=delivery,
            defaults={
                "user_id": delivery.recipient_id,
                "kind": delivery.kind,
                "title": delivery.title,
                "body": delivery.body,
                "url": delivery.url,
            },
        )
    return notification if created else None


def _record_sent(delivery: Delivery) -> bool:
    """Mark the row sent, if it is still ours."""
    with _outbox_transaction():
        if not _finish(delivery, status=Delivery.Status.SENT, sent_at=timezone.now()):
            # Our lease ran out and another worker took the row over; it records the send.
            log.warning("delivery %s was reclaimed while this worker sent it", delivery.pk)
            return False
    return True


def _wants_email(delivery: Delivery, opted_out: set[int]) -> bool:
    if not delivery.send_email:
        return False  # without touching `recipient`: in-app rows carry no person (_recipients_attach)
    user = delivery.recipient
    return bool(user.email and user.is_active and user.pk not in opted_out)


def _send_in_app(rows: list[Delivery], online: set[int]) -> list[Notification]:
    """Write the in-app notices of claimed rows that owe no email and mark the rows sent, in one
    transaction of bulk statements. Returns the new notices of the people in `online` (to push)."""
    token = rows[0].claim_token
    ids = [r.pk for r in rows]
    with _outbox_transaction():
        have = set(Notification.objects.filter(delivery_id__in=ids).values_list("delivery_id", flat=True))
        Notification.objects.bulk_create(
            [
                Notification(
                    user_id=r.recipient_id,
                    delivery_id=r.pk,
                    kind=r.kind,
                    title=r.title,
                    body=r.body,
                    url=r.url,
                )
                for r in rows
                if r.pk not in have
            ],
            batch_size=500,
            # Only a worker whose lease ran out could race us here; its notice is the same one.
            ignore_conflicts=True,
        )
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.CLAIMED, claim_token=token).update(
            status=Delivery.Status.SENT, sent_at=timezone.now()
        )
    new = [r for r in rows if r.pk not in have]
    # bulk_create sends no post_save: forget the bells' cached counts here.
    cache.delete_many([selectors.unread_key(r.recipient_id) for r in new])
    # Only the notices of people with a page open are pushed (`push`): read back only those.
    pushed = [r.pk for r in new if r.recipient_id in online]
    return list(Notification.objects.filter(delivery_id__in=pushed).order_by("pk")) if pushed else []


def send_batch(*, ids: list[int]) -> dict[str, int]:
    """Claim the due rows among `ids`, then send and record them one by one.

    Each row is marked sent right after the SMTP server accepts it, so a crash re-sends at most
    the one message that was in flight (see the module docstring).
    """
    rows = deliveries_claim(ids=ids)
    return _send_claimed(rows, Counter(skipped=len(ids) - len(rows)))


def _recipients_attach(rows: list[Delivery]) -> None:
    """Load the people only for rows that may owe an email (in-app notices need only the id)."""
    ids = {r.recipient_id for r in rows if r.send_email}
    if not ids:
        return
    people = get_user_model().objects.in_bulk(list(ids))
    for row in rows:
        if row.recipient_id in people:
            row.recipient = people[row.recipient_id]


def _send_claimed(rows: list[Delivery], counts: Counter[str]) -> dict[str, int]:
    """Send rows this worker has claimed (`send_batch`, `deliveries_send_now`)."""
    _recipients_attach(rows)
    opted_out = _opted_out(rows)
    not_owed = hooks.not_owed(rows)
    online = selectors.online_among(user_ids=sorted({r.recipient_id for r in rows}))
    mailer = LazyConnection()
    sent: list[Notification] = []
    # Rows that owe no email (in-app only: a go-live notice to a follower who did not ask for
    # email) are written and marked in a few bulk statements; only emails go one by one.
    in_app = [r for r in rows if r.pk not in not_owed and not _wants_email(r, opted_out)]
    if in_app:
        sent += _send_in_app(in_app, online)
        counts["sent"] += len(in_app)
        done = {r.pk for r in in_app}
        rows = [r for r in rows if r.pk not in done]
    lease_started = time.monotonic()
    owned = {r.pk for r in rows}
    try:
        for i, delivery in enumerate(rows):
            if time.monotonic() - lease_started > settings.NOTIFICATIONS_CLAIM_TIMEOUT / 3:
                owned = _renew(rows[i:])
                lease_started = time.monotonic()
            if delivery.pk not in owned:
                counts["reclaimed"] += 1
                continue
            if delivery.pk in not_owed:
                _finish(delivery, status=Delivery.Status.CANCELLED)
                counts["cancelled"] += 1
                continue
            notification = _notice_write(delivery)
            if notification is not None:
                sent.append(notification)
            if _wants_email(delivery, opted_out):
                try:
                    mailer.send(build_email(delivery))
                except Exception as exc:
                    _retry_later(delivery, exc)
                    counts["retry"] += 1
                    continue
            if not _record_sent(delivery):
                counts["reclaimed"] += 1
                continue
            counts["sent"] += 1
    finally:
        mailer.close()
        push(notifications=sent, online=online)
    return {k: v for k, v in counts.items() if v}
