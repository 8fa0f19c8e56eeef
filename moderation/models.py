"""Reports, host blocks, the audit log and feedback. Every write goes through `moderation.services`."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from accounts.models import User
from rooms.models import Space

TEXT_MAX = 500
NOTE_MAX = 1000


class Report(models.Model):
    class Reason(models.TextChoices):
        SPAM = "spam", "Spam or scam"
        HARASSMENT = "harassment", "Harassment or bullying"
        HATE = "hate", "Hateful conduct"
        VIOLENCE = "violence", "Violence or threats"
        SEXUAL = "sexual", "Sexual content"
        IMPERSONATION = "impersonation", "Impersonation"
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_made"
    )
    # Exactly one target: a Space or an account.
    space = models.ForeignKey(
        "rooms.Space", on_delete=models.CASCADE, null=True, blank=True, related_name="reports"
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="reports_received",
    )
    reason = models.CharField(max_length=16, choices=Reason.choices)
    text = models.TextField(blank=True, max_length=TEXT_MAX, validators=[MaxLengthValidator(TEXT_MAX)])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    moderator_note = models.TextField(blank=True, max_length=NOTE_MAX)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(space__isnull=False) & Q(account__isnull=True))
                | (Q(space__isnull=True) & Q(account__isnull=False)),
                name="report_one_target",
            ),
            models.UniqueConstraint(
                fields=["reporter", "space"],
                condition=Q(status="open", space__isnull=False),
                name="report_one_open_per_space",
            ),
            models.UniqueConstraint(
                fields=["reporter", "account"],
                condition=Q(status="open", account__isnull=False),
                name="report_one_open_per_account",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="report_status_idx")]

    def __str__(self) -> str:
        return f"Report #{self.pk} on {self.target_label}"

    @property
    def target_type(self) -> str:
        return "space" if self.space_id else "account"

    @property
    def target_label(self) -> str:
        return f"Space “{self.space}”" if self.space_id else str(self.account)


class HostBlock(models.Model):
    """The host keeps `blocked` out of every Space they host, now and later."""

    host = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocked_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["host", "blocked"], name="hostblock_once"),
            models.CheckConstraint(condition=~Q(host=F("blocked")), name="hostblock_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.host} blocked {self.blocked}"


class AuditLog(models.Model):
    """One row per moderator or host enforcement action. Rows are never changed or deleted:
    the target is stored as type/id/label, not a foreign key, so deleting it keeps the record."""

    class Action(models.TextChoices):
        REPORT_RESOLVE = "report_resolve", "Resolved a report"
        REPORT_DISMISS = "report_dismiss", "Dismissed a report"
        SPACE_END = "space_end", "Ended a Space"
        ACCOUNT_SUSPEND = "account_suspend", "Suspended an account"
        ACCOUNT_REINSTATE = "account_reinstate", "Reinstated an account"
        HOST_BLOCK = "host_block", "Host blocked a user"
        HOST_UNBLOCK = "host_unblock", "Host unblocked a user"
        PARTICIPANT_REMOVE = "participant_remove", "Removed someone from a Space"
        TICKET_REFUND = "ticket_refund", "Refunded a ticket"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_label = models.CharField(max_length=64)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    target_type = models.CharField(max_length=16)
    target_id = models.BigIntegerField()
    target_label = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.actor_label} · {self.get_action_display()} · {self.target_label}"


class Feedback(models.Model):
    """“How was the audio?” — one rating per person per Space (a second answer replaces the first)."""

    space = models.ForeignKey("rooms.Space", on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback_given"
    )
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True, max_length=TEXT_MAX, validators=[MaxLengthValidator(TEXT_MAX)])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="feedback_once_per_space"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="feedback_rating_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5 from {self.user} on {self.space}"


# Read-only views of feedback for the admin: averages per Space and per host. Proxies, so they are
# ordinary admin pages with sorting and search, and moderators get their own view permission.


class SpaceRating(Space):
    class Meta:
        proxy = True
        verbose_name = "feedback by Space"
        verbose_name_plural = "feedback by Space"


class HostRating(User):
    class Meta:
        proxy = True
        verbose_name = "feedback by host"
        verbose_name_plural = "feedback by host"


class LiveSpace(Space):
    """The moderators' list of Spaces: live ones first, with what they need to decide (see admin.py)."""

    class Meta:
        proxy = True
        verbose_name = "Space (live first)"
        verbose_name_plural = "Spaces (live first)"
