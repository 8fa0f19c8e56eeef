"""The in-app inbox, and the outbox that Celery drains.

`Delivery` is the durable outbox: one row per (recipient, kind, Space, due time), written in the
same transaction as the change that causes it, and sent by `notifications.tasks` when it falls due.
The database, not the broker, remembers what is due (DESIGN.md, "Later work").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Notification(models.Model):
    """One line in a person's in-app list. Created when its Delivery is sent."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    # At most one in-app line per outbox row, whichever worker gets there.
    delivery = models.OneToOneField(
        "Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_idx"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed by a worker"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    # The Space a row is about, if any: the apps above read it (rooms.reminders asks at send time
    # whether the row is still owed). A plain id, not a foreign key, so this app's schema knows
    # nothing of theirs; a row whose Space is gone is cancelled at send time by that check.
    space_id = models.BigIntegerField(null=True, blank=True)
    due_at = models.DateTimeField()
    # Whoever writes the row names it, so writing it twice (a retried request, a double click,
    # two services reacting to one change) is a no-op rather than a second message.
    dedupe_key = models.CharField(max_length=200, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    send_email = models.BooleanField(default=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["pending", "claimed"]),
                name="delivery_due_idx",
            ),
            models.Index(fields=["space_id", "kind", "status"], name="delivery_space_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient_id} at {self.due_at:%Y-%m-%d %H:%M}Z ({self.status})"


class EmailPreference(models.Model):
    """A person who pressed "stop these emails". No row means emails are on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="email_preference"
    )
    email_opt_out = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: emails {'off' if self.email_opt_out else 'on'}"
