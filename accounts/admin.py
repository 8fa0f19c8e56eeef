from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied

from . import services
from .models import Follow, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = (
        "username",
        "display_name",
        "email",
        "follower_count",
        "following_count",
        "hosting_granted",
        "is_suspended",
        "is_staff",
        "date_joined",
    )
    list_filter = ("is_suspended", "hosting_granted", "is_staff", "is_superuser", "is_active")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    ordering = ("-date_joined",)
    readonly_fields = ("follower_count", "following_count", "suspended_at", "last_login", "date_joined")
    actions = ("grant_hosting",)  # moderation.admin adds suspend and reinstate
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("display_name", "email", "bio", "avatar", "date_of_birth", "time_zone")}),
        (
            "Standing",
            {
                "fields": (
                    "follower_count",
                    "following_count",
                    "hosting_granted",
                    "is_suspended",
                    "suspended_at",
                )
            },
        ),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Moderators manage standing, never privileges.
            fields += ["is_staff", "is_superuser", "groups", "user_permissions", "password", "is_suspended"]
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def _apply(self, request, queryset, action, verb: str) -> None:
        done = 0
        for user in queryset:
            try:
                action(user=user, by=request.user)
                done += 1
            except PermissionDenied as exc:
                self.message_user(request, f"@{user.username}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} account(s).", messages.SUCCESS)

    @admin.action(description="Grant hosting early", permissions=["change"])
    def grant_hosting(self, request, queryset):
        self._apply(request, queryset, services.user_grant_hosting, "Granted hosting to")


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ("follower", "followee", "created_at")
    search_fields = ("follower__username", "followee__username")
    raw_id_fields = ("follower", "followee")
    list_select_related = ("follower", "followee")

    def has_add_permission(self, request):
        return False  # follows are made by people, through accounts.services

    def has_change_permission(self, request, obj=None):
        return False
