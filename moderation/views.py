from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from accounts.ratelimit import RateLimited
from rooms.models import Space

from . import selectors, services
from .forms import FeedbackForm, ReportForm
from .models import Feedback


def _is_htmx(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


# --- reports ----------------------------------------------------------------------


def _report(request: HttpRequest, *, space: Space | None = None, account: User | None = None) -> HttpResponse:
    context: dict = {"space": space, "account": account}
    status = 200
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            try:
                services.report_create(
                    reporter=request.user,
                    space=space,
                    account=account,
                    reason=form.cleaned_data["reason"],
                    text=form.cleaned_data["text"],
                )
                context["done"] = True
            except services.DuplicateReport as exc:
                context.update(done=True, already=exc.messages[0])
            except (ValidationError, PermissionDenied) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                form.add_error(None, message)
                status = 429 if isinstance(exc, RateLimited) else 400
        else:
            status = 400
    else:
        form = ReportForm()
    context["form"] = form
    if not _is_htmx(request):
        template = "moderation/report.html"
    elif request.method == "GET":
        template = "moderation/_report_modal.html"  # opens over the page it was asked from
    else:
        template = "moderation/_report_form.html"  # swaps itself inside the open modal
    # htmx swaps only 2xx answers by default; the form with its errors must still show.
    return render(request, template, context, status=200 if _is_htmx(request) else status)


@login_required
@require_http_methods(["GET", "POST"])
def report_space(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    return _report(request, space=space)


@login_required
@require_http_methods(["GET", "POST"])
def report_account(request: HttpRequest, username: str) -> HttpResponse:
    account = get_object_or_404(User, username__iexact=username)
    if account.pk == request.user.pk:
        raise PermissionDenied("You can't report yourself.")
    return _report(request, account=account)


@login_required
def my_reports(request: HttpRequest) -> HttpResponse:
    reports = selectors.reports_by(reporter=request.user)[:50]
    return render(request, "moderation/my_reports.html", {"reports": reports})


# --- feedback ----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest, space_id: int) -> HttpResponse:
    """The “How was the audio?” prompt: one tap posts a rating; the comment box that follows is optional."""
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    refusal = services.feedback_refusal(space=space, user=request.user)
    if refusal:
        return render(request, "403.html", {"exception": refusal}, status=403)
    existing = Feedback.objects.filter(space=space, user=request.user).first()
    status = 200
    if request.method == "POST":
        form = FeedbackForm(request.POST)
        if form.is_valid():
            comment = form.cleaned_data["comment"] or (existing.comment if existing else "")
            try:
                existing = services.feedback_submit(
                    space=space, user=request.user, rating=form.cleaned_data["rating"], comment=comment
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages[0])
                status = 400
        else:
            status = 400
    else:
        form = FeedbackForm()
    context = {"space": space, "form": form, "feedback": existing}
    if _is_htmx(request):
        return render(request, "moderation/_feedback.html", context)
    return render(request, "moderation/feedback.html", context, status=status)


# --- host blocks --------------------------------------------------------------------


def safe_next(request: HttpRequest, *, default: str) -> str:
    """The form's `next`, if it stays on this site; otherwise `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(default)


def _block_response(request: HttpRequest, person: User) -> HttpResponse:
    blocked = selectors.is_blocked_by_host(host_id=request.user.pk, user_id=person.pk)
    if _is_htmx(request) or request.method == "GET":
        return render(request, "moderation/_block_button.html", {"person": person, "blocked": blocked})
    return redirect(safe_next(request, default="moderation:blocks"))


@login_required
@require_http_methods(["GET", "POST"])
def block(request: HttpRequest, username: str) -> HttpResponse:
    """GET: the Block button for this person (for htmx to fetch). POST: block them from my Spaces."""
    person = get_object_or_404(User, username__iexact=username)
    if request.method == "POST":
        try:
            services.host_block(host=request.user, user=person)
            if not _is_htmx(request):
                messages.success(request, f"{person} can't join your Spaces any more.")
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
    return _block_response(request, person)


@login_required
@require_POST
def unblock(request: HttpRequest, username: str) -> HttpResponse:
    person = get_object_or_404(User, username__iexact=username)
    services.host_unblock(host=request.user, user=person)
    if not _is_htmx(request):
        messages.success(request, f"{person} can join your Spaces again.")
    return _block_response(request, person)


@login_required
def blocks(request: HttpRequest) -> HttpResponse:
    return render(request, "moderation/blocks.html", {"blocks": selectors.blocks_of(host=request.user)})
