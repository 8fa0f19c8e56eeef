from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services

PAGE_SIZE = 30


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.notifications_for(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    notes = list(page.object_list)
    # Seen is read: the page shows what was new this once, then the badge clears.
    services.notifications_mark_read(user=request.user, ids=[n.pk for n in notes if n.read_at is None])
    return render(
        request,
        "notifications/inbox.html",
        {
            "page": page,
            "notes": notes,
            "email_opted_out": services.email_opted_out(user=request.user),
        },
    )


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_read(user=request.user)
    return redirect("notifications:inbox")


@login_required
@require_POST
def email_preference(request: HttpRequest) -> HttpResponse:
    opted_out = request.POST.get("emails") == "off"
    services.email_opt_out_set(user=request.user, opted_out=opted_out)
    messages.success(
        request, "You won't get notification emails." if opted_out else "Notification emails are back on."
    )
    return redirect("notifications:inbox")


# Mail clients call the one-click unsubscribe (RFC 8058) with a POST and no cookies; the signed
# token is the credential, so CSRF protection has nothing to protect here.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def email_link(request: HttpRequest, token: str) -> HttpResponse:
    """The links at the foot of every email: remove this reminder, or stop these emails.

    A GET only asks (mail scanners and link previews open links without anyone clicking); the
    change is a POST: the page's button, or a mail client's one-click unsubscribe (RFC 8058). The
    signed token is what authorises it, so no CSRF token is needed. The done page offers the way back.
    """
    if request.method == "POST" and request.POST.get("undo"):
        token = request.POST["undo"]
    try:
        if request.method == "GET":
            template, context = services.email_link_describe(token=token)
            return render(request, template, {**context, "token": token})
        outcome = services.email_link_apply(token=token)
    except services.BadLink as exc:
        return render(
            request,
            "notifications/email_link_bad.html",
            {"reason": exc.messages[0], "code": exc.code},
            status=400,
        )
    undo = ""
    if outcome.action == services.STOP_EMAILS:
        undo = services.email_link_token(user_id=outcome.user.pk, action=services.RESUME_EMAILS)
    return render(
        request, outcome.template, {"outcome": outcome, "undo_token": undo, "token": token, **outcome.context}
    )
