from django.contrib import admin

from .models import Delivery, EmailPreference, Notification


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("kind", "recipient", "space_id", "due_at", "status", "attempts", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("recipient__username", "dedupe_key", "title")
    raw_id_fields = ("recipient",)
    readonly_fields = (
        "dedupe_key",
        "claim_token",
        "claimed_at",
        "enqueued_at",
        "sent_at",
        "attempts",
        "last_error",
    )
    date_hierarchy = "due_at"


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "kind", "created_at", "read_at")
    list_filter = ("kind",)
    raw_id_fields = ("user", "delivery")


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "email_opt_out", "updated_at")
    raw_id_fields = ("user",)
