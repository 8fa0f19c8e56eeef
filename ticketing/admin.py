"""Moderators see the money trail read-only and can refund one ticket at a time."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from . import services
from .commission import format_cents
from .models import Hold, LedgerEntry, PayoutAccount, Ticket, TicketSettings, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows here change only through ticketing.services, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("id", "holder", "space", "status", "price", "commission", "created_at", "refund_reason")
    list_filter = ("status", "refund_reason")
    search_fields = ("holder__username", "space__title", "stripe_payment_intent_id", "=id")
    list_select_related = ("holder", "space")
    raw_id_fields = ("holder", "space", "hold")
    date_hierarchy = "created_at"
    actions = ("refund_ticket",)

    @admin.display(description="price")
    def price(self, obj: Ticket) -> str:
        return format_cents(obj.price_cents, obj.currency)

    @admin.display(description="commission")
    def commission(self, obj: Ticket) -> str:
        return f"{format_cents(obj.commission_cents, obj.currency)} ({obj.commission_bps / 100:g}%)"

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("ticketing.refund_ticket")

    @admin.action(description="Refund this ticket in full", permissions=["refund"])
    def refund_ticket(self, request, queryset):
        tickets = list(queryset[:2])
        if len(tickets) != 1:
            self.message_user(request, "Choose exactly one ticket to refund.", messages.ERROR)
            return
        ticket = tickets[0]
        try:
            done = services.ticket_refund(ticket=ticket, by=request.user)
        except (services.TicketError, PermissionDenied) as exc:
            self.message_user(request, f"Ticket {ticket.pk}: {exc}", messages.ERROR)
            return
        if done:
            self.message_user(
                request,
                f"Refunded ticket {ticket.pk}: {format_cents(ticket.price_cents, ticket.currency)} to "
                f"{ticket.holder}. They have been told.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"Ticket {ticket.pk} is marked for refund, but the payment provider didn't confirm yet; "
                "it will be retried automatically.",
                messages.WARNING,
            )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "host",
        "space",
        "gross_cents",
        "commission_cents",
        "host_share_cents",
    )
    list_filter = ("kind",)
    search_fields = ("host__username", "space__title", "reference")
    list_select_related = ("host", "space")
    raw_id_fields = ("ticket", "host", "space")


@admin.register(TicketSettings)
class TicketSettingsAdmin(ReadOnlyAdmin):
    list_display = ("space", "price_cents", "capacity", "sales_close_at", "refund_reason")
    list_select_related = ("space",)
    raw_id_fields = ("space",)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "stripe_account_id", "charges_enabled", "payouts_enabled", "details_submitted")
    search_fields = ("user__username", "stripe_account_id")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ("id", "buyer", "space", "status", "expires_at", "checkout_session_id")
    list_filter = ("status",)
    list_select_related = ("buyer", "space")
    raw_id_fields = ("buyer", "space")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "outcome", "received_at")
    list_filter = ("type",)
    search_fields = ("=event_id",)
