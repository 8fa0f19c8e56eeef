"""Pages for scheduled Spaces: schedule, edit, cancel, start now, reminders, calendar file.

`scheduled_space_page(request, space)` renders a scheduled Space; the /spaces/<id>/ view calls it
while the Space is scheduled, and /spaces/<id>/scheduled/ always does.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.services import hosting_eligibility
from accounts.validators import validate_single_line

from . import reminders, rules, scheduling, selectors
from .calendar import space_ics
from .hooks import space_page_extra
from .models import TOPICS_MAX, Space
from .previews import space_preview


class ScheduleForm(forms.Form):
    title = forms.CharField(
        max_length=70,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "What's it about?"}),
    )
    topics = forms.CharField(
        required=False,
        max_length=80,
        validators=[validate_single_line],
        help_text=f"Up to {TOPICS_MAX}, separated by commas.",
        widget=forms.TextInput(attrs={"placeholder": "music, design"}),
    )
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    def __init__(self, *args, tz_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz_name = tz_name
        today = timezone.localdate(timezone=zoneinfo.ZoneInfo(tz_name))
        self.fields["date"].widget.attrs.update(
            min=today.isoformat(),
            max=(today + timedelta(days=rules.SCHEDULE_MAX_DAYS)).isoformat(),
        )
        self.fields["time"].help_text = f"Your time zone: {tz_name.replace('_', ' ')}."

    def clean_topics(self) -> list[str]:
        topics = [t.strip() for t in self.cleaned_data["topics"].split(",") if t.strip()]
        if len(topics) > TOPICS_MAX:
            raise ValidationError(f"Choose at most {TOPICS_MAX} topics.")
        return topics

    def clean(self):
        data = super().clean()
        if data.get("date") and data.get("time"):
            local = datetime.combine(data["date"], data["time"])
            try:
                data["scheduled_for"] = scheduling.local_to_utc(local=local, tz_name=self.tz_name)
            except ValidationError as exc:
                self.add_error("time", exc)
        return data

    @classmethod
    def initial_for(cls, space: Space, tz_name: str) -> dict:
        local = space.scheduled_for.astimezone(zoneinfo.ZoneInfo(tz_name))
        return {
            "title": space.title,
            "topics": ", ".join(space.topics),
            "date": local.date(),
            "time": local.time(),
        }


def _apply_errors(form: forms.Form, exc: ValidationError) -> None:
    field = {"past": "date", "too_far": "date", "title": "title", "nonexistent_time": "time"}.get(
        exc.code or ""
    )
    for message in exc.messages:
        form.add_error(field if field in form.fields else None, message)


@login_required
def schedule_new(request: HttpRequest) -> HttpResponse:
    eligibility = hosting_eligibility(user=request.user)
    if not eligibility.allowed:
        return render(
            request, "rooms/schedule_form.html", {"eligibility": eligibility, "form": None}, status=403
        )
    tz_name = request.user.time_zone or "UTC"
    form = ScheduleForm(request.POST or None, tz_name=tz_name)
    if request.method == "POST" and form.is_valid():
        try:
            space = scheduling.space_schedule(
                host=request.user,
                title=form.cleaned_data["title"],
                topics=form.cleaned_data["topics"],
                scheduled_for=form.cleaned_data["scheduled_for"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Scheduled. People who follow you will see it on their home page.")
            return redirect("rooms:scheduled_space", space_id=space.pk)
    return render(
        request,
        "rooms/schedule_form.html",
        {
            "form": form,
            "eligibility": eligibility,
            "upcoming": scheduling.upcoming_count(host=request.user),
            "max_upcoming": rules.SCHEDULE_MAX_UPCOMING,
            "max_days": rules.SCHEDULE_MAX_DAYS,
        },
        status=400 if form.errors else 200,
    )


def scheduled_space_page(request: HttpRequest, space: Space) -> HttpResponse:
    """The page of a scheduled (or cancelled) Space, for anyone."""
    annotated = selectors.scheduled_spaces(viewer=request.user).filter(pk=space.pk).first()
    if annotated is None:  # cancelled: no longer in the scheduled list
        annotated = space
        annotated.reminder_count = selectors.reminder_count(space=space)
        annotated.viewer_reminded = False
    is_host = request.user.is_authenticated and request.user.pk == space.host_id
    return render(
        request,
        "rooms/schedule_space.html",
        {
            "space": annotated,
            "is_host": is_host,
            "is_overdue": space.scheduled_for and space.scheduled_for <= timezone.now(),
            "viewer_zone": timezone.get_current_timezone_name(),
            "preview": space_preview(space),
            **space_page_extra(space=space, viewer=request.user),
        },
    )


def scheduled_space(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    if space.state in (Space.State.LIVE, Space.State.ENDED):
        return redirect(space)
    if space.scheduled_for is None:
        raise Http404("This Space was never scheduled.")
    return scheduled_space_page(request, space)


def _hosted(request: HttpRequest, space_id: int) -> Space:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    if space.host_id != request.user.pk:
        raise PermissionDenied("Only the host can change this Space.")
    return space


@login_required
def schedule_edit(request: HttpRequest, space_id: int) -> HttpResponse:
    space = _hosted(request, space_id)
    if space.state != Space.State.SCHEDULED:
        messages.error(request, "This Space can't be edited any more.")
        return redirect("rooms:scheduled_space", space_id=space.pk)
    tz_name = request.user.time_zone or "UTC"
    form = ScheduleForm(
        request.POST or None, tz_name=tz_name, initial=ScheduleForm.initial_for(space, tz_name)
    )
    if request.method == "POST" and form.is_valid():
        try:
            moved = space.scheduled_for != form.cleaned_data["scheduled_for"]
            scheduling.space_reschedule(
                space=space,
                by=request.user,
                title=form.cleaned_data["title"],
                topics=form.cleaned_data["topics"],
                scheduled_for=form.cleaned_data["scheduled_for"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(
                request, "Moved. Everyone reminded has been told the new time." if moved else "Saved."
            )
            return redirect("rooms:scheduled_space", space_id=space.pk)
    return render(
        request,
        "rooms/schedule_form.html",
        {"form": form, "space": space, "eligibility": None},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def schedule_cancel(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    try:
        scheduling.space_cancel(space=space, by=request.user, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Cancelled. Everyone who set a reminder has been told.")
    return redirect("rooms:scheduled_space", space_id=space.pk)


@login_required
@require_POST
def schedule_start(request: HttpRequest, space_id: int) -> HttpResponse:
    space = _hosted(request, space_id)
    try:
        space = scheduling.space_start_early(space=space, by=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("rooms:scheduled_space", space_id=space.pk)
    return redirect(space)


def schedule_calendar(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id, scheduled_for__isnull=False)
    body = space_ics(space=space, sequence=selectors.schedule_sequence(space=space))
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="space-{space.pk}.ics"'
    response["Cache-Control"] = "no-cache"
    return response


@login_required
@require_POST
def reminder_toggle(request: HttpRequest, space_id: int) -> HttpResponse:
    """Set or remove the viewer's reminder; htmx swaps the button, others get the page back."""
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    error = ""
    try:
        if request.POST.get("remind") == "off":
            reminders.reminder_remove(user=request.user, space=space)
        else:
            reminders.reminder_set(user=request.user, space=space)
    except ValidationError as exc:
        error = exc.messages[0]
    if not request.headers.get("HX-Request"):
        if error:
            messages.error(request, error)
        return redirect("rooms:scheduled_space", space_id=space.pk)
    annotated = selectors.scheduled_spaces(viewer=request.user).filter(pk=space.pk).first() or space
    return render(request, "notifications/_reminder_button.html", {"space": annotated, "error": error})
