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
  systems that de-duplicate by Message-ID collapse the pair. The in-app notification is written in
  the same transaction as `status=sent` and keyed one-to-one on the row, so it is never doubled.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlparse

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from rooms.models import Space

from . import services
from .models import Delivery, EmailPreference, Notification, Reminder

log = logging.getLogger(__name__)


def group_for(user_id: int) -> str:
    """The channel-layer group of one person's open tabs (see notifications.consumers)."""
    return f"notifications.user.{user_id}"


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


def delivery_claim(*, pk: int, now: datetime | None = None) -> Delivery | None:
    """Take the row for this worker, or return None if someone else has it or it is not due."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT)
    taken = (
        Delivery.objects.filter(pk=pk, due_at__lte=now)
        .filter(Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.CLAIMED, claimed_at__lt=stale))
        .update(status=Delivery.Status.CLAIMED, claimed_at=now, claim_token=token, attempts=F("attempts") + 1)
    )
    if not taken:
        return None
    return Delivery.objects.select_related("recipient", "space").get(pk=pk, claim_token=token)


def _finish(delivery: Delivery, **fields) -> int:
    """Write the outcome, but only while the claim is still ours."""
    return Delivery.objects.filter(
        pk=delivery.pk, status=Delivery.Status.CLAIMED, claim_token=delivery.claim_token
    ).update(**fields)


def _obsolete(delivery: Delivery) -> bool:
    """Things changed between queueing and sending: a started or cancelled Space has no start time."""
    space = delivery.space
    if space is None:
        return False
    if delivery.kind in services.TIMED_KINDS:
        return space.state != Space.State.SCHEDULED
    if delivery.kind == services.SPACE_LIVE:
        return space.state != Space.State.LIVE
    return False


def _wants_email(delivery: Delivery) -> bool:
    user = delivery.recipient
    if not delivery.send_email or not user.email or not user.is_active:
        return False
    return not EmailPreference.objects.filter(user=user, email_opt_out=True).exists()


def _site_host() -> str:
    return urlparse(settings.SITE_URL).hostname or "spaces.localhost"


def build_email(delivery: Delivery) -> EmailMultiAlternatives:
    user = delivery.recipient
    stop_url = settings.SITE_URL + reverse(
        "notifications:email_link",
        args=[services.email_link_token(user_id=user.pk, action=services.STOP_EMAILS)],
    )
    unremind_url = ""
    if delivery.kind in services.REMINDER_KINDS and delivery.space_id:
        unremind_url = settings.SITE_URL + reverse(
            "notifications:email_link",
            args=[
                services.email_link_token(
                    user_id=user.pk, action=services.UNREMIND, space_id=delivery.space_id
                )
            ],
        )
    context = {
        "delivery": delivery,
        "user": user,
        "stop_url": stop_url,
        "unremind_url": unremind_url,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=delivery.title,
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


def push(*, user_id: int, notification: Notification) -> None:
    """Tell the person's open tabs, if any. Best effort: the list page is the record."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            group_for(user_id),
            {
                "type": "notification.new",
                "notification": {
                    "id": notification.pk,
                    "kind": notification.kind,
                    "title": notification.title,
                    "body": notification.body,
                    "url": notification.url,
                },
            },
        )
    except Exception:  # a dead channel layer must not fail a send that already happened
        log.warning("could not push notification %s", notification.pk, exc_info=True)


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
    if delivery.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
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


def delivery_send(*, pk: int, connection: LazyConnection) -> str:
    """Claim, send and record one row. Returns what happened: sent, skipped, cancelled or retry."""
    delivery = delivery_claim(pk=pk)
    if delivery is None:
        return "skipped"
    if _obsolete(delivery):
        _finish(delivery, status=Delivery.Status.CANCELLED)
        return "cancelled"
    # The reminder was removed after this row was claimed.
    if (
        delivery.kind in (services.SPACE_STARTING, services.SPACE_LIVE)
        and not Reminder.objects.filter(user_id=delivery.recipient_id, space_id=delivery.space_id).exists()
    ):
        _finish(delivery, status=Delivery.Status.CANCELLED)
        return "cancelled"
    if _wants_email(delivery):
        try:
            connection.send(build_email(delivery))
        except Exception as exc:
            _retry_later(delivery, exc)
            return "retry"
    with transaction.atomic():
        if not _finish(delivery, status=Delivery.Status.SENT, sent_at=timezone.now()):
            # Our claim timed out and another worker took the row over; it records the send.
            log.warning("delivery %s was reclaimed while this worker sent it", delivery.pk)
            return "reclaimed"
        notification = Notification.objects.create(
            user_id=delivery.recipient_id,
            delivery=delivery,
            kind=delivery.kind,
            title=delivery.title,
            body=delivery.body,
            url=delivery.url,
        )
        transaction.on_commit(lambda: push(user_id=delivery.recipient_id, notification=notification))
    return "sent"


def send_batch(*, ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    connection = LazyConnection()
    try:
        for pk in ids:
            outcome = delivery_send(pk=pk, connection=connection)
            counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        connection.close()
    return counts
