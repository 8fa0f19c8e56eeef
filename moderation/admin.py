"""The moderators' admin: the report queue, the audit log, host blocks and feedback averages.

Every action that changes something goes through `moderation.services`, which checks the
permission and writes the audit row; the admin only collects a note and reports the outcome.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Avg, Case, Count, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User
from accounts.selectors import is_moderator
from rooms.hooks import space_admin_figures
from rooms.models import Participant

from . import selectors, services
from .models import NOTE_MAX, AuditLog, Feedback, HostBlock, HostRating, LiveSpace, Report, SpaceRating


def action_with_note(
    modeladmin: admin.ModelAdmin,
    request,
    queryset,
    *,
    title: str,
    button: str,
    apply: Callable,
    describe: Callable = str,
    danger: bool = False,
    note_help: str = "",
):
    """Run an admin action after asking for a note: the first POST shows the note page, the second
    calls `apply(obj, note)` for each object and reports what happened. Other apps' admins use it for
    their moderation actions (suspend, reinstate, end Space)."""
    if request.POST.get("note_confirmed"):
        note = request.POST.get("note", "").strip()[:NOTE_MAX]
        done = 0
        for obj in queryset:
            try:
                apply(obj, note)
                done += 1
            except (PermissionDenied, ValidationError) as exc:
                text = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                modeladmin.message_user(request, f"{describe(obj)}: {text}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{button}: {done} done.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "button": button,
        "danger": danger,
        "objects": [describe(obj) for obj in queryset],
        "queryset": queryset,
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "note_max": NOTE_MAX,
        "note_help": note_help,
    }
    return TemplateResponse(request, "admin/moderation/action_note.html", context)


# --- reports ----------------------------------------------------------------------


class ReportStatusFilter(admin.SimpleListFilter):
    """The queue opens on open reports; the other statuses are one click away."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Report.Status.choices, ("all", "All")]

    def choices(self, changelist):
        value = self.value() or Report.Status.OPEN
        for lookup, label in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or Report.Status.OPEN
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "target",
        "reason",
        "short_text",
        "reporter",
        "target_reports",
        "status",
        "created_at",
    )
    list_display_links = ("id",)
    list_filter = (ReportStatusFilter, "reason")
    search_fields = ("text", "reporter__username", "account__username", "space__title")
    list_select_related = ("reporter", "account", "space", "space__host")
    actions = ("resolve_reports", "dismiss_reports")
    readonly_fields = (
        "reporter",
        "target",
        "reason",
        "text",
        "status",
        "moderator_note",
        "handled_by",
        "handled_at",
        "created_at",
    )
    fields = readonly_fields
    change_list_template = "admin/moderation/report/change_list.html"

    def get_queryset(self, request):
        def open_reports_on(field: str) -> Subquery:
            counted = (
                Report.objects.filter(**{field: OuterRef(field)}, status=Report.Status.OPEN)
                .values(field)
                .annotate(n=Count("pk"))
                .values("n")
            )
            return Subquery(counted, output_field=IntegerField())

        return (
            super()
            .get_queryset(request)
            .annotate(
                space_open=open_reports_on("space"),
                account_open=open_reports_on("account"),
            )
        )

    def get_ordering(self, request):
        # Open reports first, oldest first: the queue is worked in the order people asked.
        open_first = Case(When(status=Report.Status.OPEN, then=Value(0)), default=Value(1))
        return (open_first.asc(), "created_at")

    def has_add_permission(self, request):
        return False  # people file reports on the site, through moderation.services

    def has_delete_permission(self, request, obj=None):
        return False  # a report is evidence; it is resolved or dismissed, never deleted

    @admin.display(description="Target")
    def target(self, obj: Report):
        if obj.space_id:
            return format_html(
                'Space <a href="{}">“{}”</a> by {}',
                obj.space.get_absolute_url(),
                obj.space.title,
                obj.space.host,
            )
        url = reverse("admin:accounts_user_change", args=[obj.account_id])
        return format_html('Account <a href="{}">{}</a>', url, obj.account)

    @admin.display(description="Details")
    def short_text(self, obj: Report) -> str:
        return Truncator(obj.text).chars(80)

    @admin.display(description="Open on target")
    def target_reports(self, obj: Report) -> int:
        return (obj.space_open if obj.space_id else obj.account_open) or 0

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "report_counts": selectors.report_counts()}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Resolve selected reports (action taken)", permissions=["change"])
    def resolve_reports(self, request, queryset):
        return action_with_note(
            self,
            request,
            queryset.filter(status=Report.Status.OPEN),
            title="Resolve reports",
            button="Resolve",
            apply=lambda report, note: services.report_resolve(report=report, by=request.user, note=note),
        )

    @admin.action(description="Dismiss selected reports (nothing to act on)", permissions=["change"])
    def dismiss_reports(self, request, queryset):
        return action_with_note(
            self,
            request,
            queryset.filter(status=Report.Status.OPEN),
            title="Dismiss reports",
            button="Dismiss",
            apply=lambda report, note: services.report_dismiss(report=report, by=request.user, note=note),
        )


# --- the audit log: read-only for everyone, superusers included ------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_label", "note")
    list_filter = ("action", "target_type")
    search_fields = ("actor_label", "target_label", "note")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "actor",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "note",
    )

    def get_actions(self, request):
        return {}  # not even "delete selected"


@admin.register(HostBlock)
class HostBlockAdmin(ReadOnlyAdmin):
    """Blocks belong to hosts: they make and undo them on the site, where the change is audited."""

    list_display = ("host", "blocked", "created_at")
    search_fields = ("host__username", "blocked__username")
    list_select_related = ("host", "blocked")


# --- feedback ------------------------------------------------------------------------


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ("space", "user", "rating", "comment", "created_at")
    list_filter = ("rating",)
    search_fields = ("space__title", "user__username", "comment")
    list_select_related = ("space", "user")


class RatingColumns:
    """Columns for a queryset annotated with avg_rating and n_ratings."""

    @admin.display(description="Average (1–5)", ordering="avg_rating")
    def average_rating(self, obj) -> str:
        return f"{obj.avg_rating:.2f}"

    @admin.display(description="Ratings", ordering="n_ratings")
    def ratings(self, obj) -> int:
        return obj.n_ratings


@admin.register(SpaceRating)
class SpaceRatingAdmin(RatingColumns, ReadOnlyAdmin):
    list_display = ("title", "host", "state", "average_rating", "ratings", "started_at")
    list_filter = ("state",)
    search_fields = ("title", "host__username")
    list_select_related = ("host",)
    fields = ("title", "host", "state", "started_at", "ended_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(avg_rating=Avg("feedback__rating"), n_ratings=Count("feedback"))
            .filter(n_ratings__gt=0)
            .order_by("-started_at")
        )


@admin.register(HostRating)
class HostRatingAdmin(RatingColumns, ReadOnlyAdmin):
    list_display = ("username", "display_name", "average_rating", "ratings", "spaces_rated")
    search_fields = ("username", "display_name")
    fields = ("username", "display_name")

    def get_queryset(self, request):
        rated = "hosted_spaces__feedback"
        return (
            super()
            .get_queryset(request)
            .annotate(
                avg_rating=Avg(f"{rated}__rating"),
                n_ratings=Count(rated),
                n_spaces=Count(
                    "hosted_spaces", filter=Q(hosted_spaces__feedback__isnull=False), distinct=True
                ),
            )
            .filter(n_ratings__gt=0)
            .order_by("-n_ratings")
        )

    @admin.display(description="Spaces rated", ordering="n_spaces")
    def spaces_rated(self, obj) -> int:
        return obj.n_spaces


# --- Spaces, live first ----------------------------------------------------------------


@admin.register(LiveSpace)
class LiveSpaceAdmin(ReadOnlyAdmin):
    """What a moderator needs to decide about a Space at a glance, and the one thing they do to it."""

    list_display = ("title", "host", "state", "listeners", "tickets_sold", "open_reports", "started_at")
    list_filter = ("state",)
    search_fields = ("title", "host__username", "host__display_name")
    list_select_related = ("host",)
    actions = ("end_spaces",)
    fields = ("title", "host", "state", "topics", "speak_policy", "started_at", "ended_at", "ended_reason")

    def get_queryset(self, request):
        from rooms.selectors import fresh_connections

        listeners = (
            fresh_connections()
            .filter(
                space=OuterRef("pk"),
                participant__role=Participant.Role.LISTENER,
                participant__removed_at=None,
            )
            .values("space")
            .annotate(n=Count("user_id", distinct=True))
            .values("n")
        )
        reports = (
            Report.objects.filter(space=OuterRef("pk"), status=Report.Status.OPEN)
            .values("space")
            .annotate(n=Count("pk"))
            .values("n")
        )
        queryset = (
            super()
            .get_queryset(request)
            .annotate(
                n_listeners=Subquery(listeners, output_field=IntegerField()),
                n_reports=Subquery(reports, output_field=IntegerField()),
            )
        )
        # Figures the apps beside moderation add (ticketing: tickets sold), by name.
        return queryset.annotate(**{name: figure() for name, figure in space_admin_figures.items()})

    def get_ordering(self, request):
        live_first = Case(When(state=LiveSpace.State.LIVE, then=Value(0)), default=Value(1))
        return (live_first.asc(), F("started_at").desc(nulls_last=True), "-created_at")

    @admin.display(description="Listeners now", ordering="n_listeners")
    def listeners(self, obj) -> int:
        return obj.n_listeners or 0

    @admin.display(description="Tickets sold")
    def tickets_sold(self, obj) -> int | str:
        return getattr(obj, "n_tickets", None) or 0

    @admin.display(description="Open reports", ordering="n_reports")
    def open_reports(self, obj):
        if not obj.n_reports:
            return 0
        url = reverse("admin:moderation_report_changelist") + f"?space__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.n_reports)

    def has_end_permission(self, request) -> bool:
        return is_moderator(user=request.user, perm="rooms.end_space")

    @admin.action(description="End Space now", permissions=["end"])
    def end_spaces(self, request, queryset):
        def end(space, note: str) -> None:
            services.space_end_by_moderator(space=space, by=request.user, note=note)

        return action_with_note(
            self,
            request,
            queryset.filter(state=LiveSpace.State.LIVE),
            title="End Spaces now",
            button="End now",
            danger=True,
            describe=lambda space: f"“{space.title}” by {space.host}",
            apply=end,
        )


# The accounts list gains moderation's actions. Suspension goes through moderation.services: it ends
# the person's live Spaces, removes them from the ones they're in, closes their sockets and writes
# the audit row.
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountsUserAdmin):
    actions = (*AccountsUserAdmin.actions, "suspend_accounts", "reinstate_accounts")

    @admin.action(description="Suspend account", permissions=["change"])
    def suspend_accounts(self, request, queryset):
        return action_with_note(
            self,
            request,
            queryset,
            title="Suspend accounts",
            button="Suspend",
            danger=True,
            note_help="the person sees it as the reason, with how to appeal",
            apply=lambda user, note: services.account_suspend(user=user, by=request.user, note=note),
        )

    @admin.action(description="Reinstate account", permissions=["change"])
    def reinstate_accounts(self, request, queryset):
        return action_with_note(
            self,
            request,
            queryset,
            title="Reinstate accounts",
            button="Reinstate",
            apply=lambda user, note: services.account_reinstate(user=user, by=request.user, note=note),
        )
