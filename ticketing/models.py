"""Tickets for Spaces: payout accounts, per-Space ticket settings, seat holds, tickets and the ledger.

Money is integer cents everywhere. The row that serialises a Space's sales is its `TicketSettings`:
every service that can add a held or sold seat locks it first (select_for_update on PostgreSQL; on
SQLite every transaction takes the write lock at BEGIN because transaction_mode is IMMEDIATE).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class PayoutAccount(models.Model):
    """A host's Stripe Connect Express account. Its status only ever changes from `account.updated`."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payout_account"
    )
    stripe_account_id = models.CharField(max_length=64, unique=True)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    # `created` of the last account.updated applied: an older event arriving late changes nothing.
    status_event_created = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stripe_account_id} ({self.user})"

    @property
    def ready(self) -> bool:
        return self.charges_enabled and self.payouts_enabled


class TicketSettings(models.Model):
    """A Space that sells tickets. Its existence makes the Space ticketed."""

    space = models.OneToOneField("rooms.Space", on_delete=models.CASCADE, related_name="ticket_settings")
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    capacity = models.PositiveIntegerField(help_text="How many tickets can be sold.")
    sales_close_at = models.DateTimeField(
        null=True, blank=True, help_text="No sales after this time. Empty: until the Space ends."
    )
    # Set once, when every ticket of the Space is to be refunded (cancelled, or never started).
    refund_reason = models.CharField(max_length=32, blank=True)
    refunds_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "ticket settings"
        verbose_name_plural = "ticket settings"
        constraints = [
            models.CheckConstraint(condition=Q(capacity__gte=1), name="ticket_capacity_positive"),
        ]

    def __str__(self) -> str:
        return f"Tickets for space {self.space_id}"


class Hold(models.Model):
    """A seat kept for one buyer while their checkout is open."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired or abandoned"
        FAILED = "failed", "Checkout could not start"

    space = models.ForeignKey("rooms.Space", on_delete=models.CASCADE, related_name="ticket_holds")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ticket_holds")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    expires_at = models.DateTimeField()
    # The split is fixed when checkout starts: it is the application fee Stripe is told to take.
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    commission_bps = models.PositiveIntegerField()
    commission_cents = models.PositiveIntegerField()
    host_share_cents = models.PositiveIntegerField()
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["space", "buyer"], condition=Q(status="open"), name="one_open_hold_per_buyer"
            ),
        ]
        indexes = [models.Index(fields=["space", "status", "expires_at"], name="hold_space_open_idx")]

    def __str__(self) -> str:
        return f"Hold {self.pk} for {self.buyer} ({self.status})"


class Ticket(models.Model):
    class Status(models.TextChoices):
        VALID = "valid", "Valid"
        # Claimed for a refund; the Stripe refund is being (or will be re)tried. Gives no entry.
        REFUNDING = "refunding", "Being refunded"
        REFUNDED = "refunded", "Refunded"

    class RefundReason(models.TextChoices):
        CANCELLED = "cancelled", "The host cancelled the Space"
        NOT_STARTED = "not_started", "The Space did not start in time"
        MODERATOR = "moderator", "Refunded by a moderator"
        UNAVAILABLE = "unavailable", "No longer available when payment went through"
        DUPLICATE = "duplicate", "Already had a ticket"

    space = models.ForeignKey("rooms.Space", on_delete=models.CASCADE, related_name="tickets")
    holder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tickets")
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="ticket")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID)
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    commission_bps = models.PositiveIntegerField()
    commission_cents = models.PositiveIntegerField()
    host_share_cents = models.PositiveIntegerField()
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refund_reason = models.CharField(max_length=32, choices=RefundReason.choices, blank=True)
    refund_requested_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    refund_attempts = models.PositiveSmallIntegerField(default=0)
    refund_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["space", "holder"], condition=Q(status="valid"), name="one_ticket_per_person"
            ),
            models.CheckConstraint(
                condition=Q(price_cents=models.F("commission_cents") + models.F("host_share_cents")),
                name="ticket_split_adds_up",
            ),
        ]
        indexes = [models.Index(fields=["space", "status"], name="ticket_space_status_idx")]
        permissions = [("refund_ticket", "Can refund a ticket in full")]

    def __str__(self) -> str:
        return f"Ticket {self.pk}: {self.holder} for space {self.space_id} ({self.status})"


class LedgerEntry(models.Model):
    """One row per sale and one per refund; a refund row carries the sale's figures, negated."""

    class Kind(models.TextChoices):
        SALE = "sale", "Sale"
        REFUND = "refund", "Refund"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="ledger")
    host = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ticket_ledger")
    space = models.ForeignKey("rooms.Space", on_delete=models.PROTECT, related_name="ticket_ledger")
    currency = models.CharField(max_length=3)
    gross_cents = models.IntegerField()
    commission_cents = models.IntegerField()
    host_share_cents = models.IntegerField()
    commission_bps = models.PositiveIntegerField()
    reference = models.CharField(max_length=255, blank=True, help_text="Stripe payment intent or refund id.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A ticket is sold once and refunded at most once, whoever retries.
            models.UniqueConstraint(fields=["ticket", "kind"], name="ledger_once_per_ticket_and_kind"),
            models.CheckConstraint(
                condition=Q(gross_cents=models.F("commission_cents") + models.F("host_share_cents")),
                name="ledger_split_adds_up",
            ),
        ]
        indexes = [models.Index(fields=["host", "space"], name="ledger_host_space_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.gross_cents}¢ ticket {self.ticket_id}"


class WebhookEvent(models.Model):
    """Every Stripe event applied, by id: a replay finds its row and changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField(help_text="The event's own `created` timestamp.")
    outcome = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
