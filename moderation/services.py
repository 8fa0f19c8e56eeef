"""Every moderation write: reports, host blocks, feedback and the moderators' enforcement actions.

Each enforcement action (a moderator's or a host's) writes its AuditLog row in the same
transaction as the change, so there is never an action without its record, nor a record of an
action that was rolled back. Live effects (ending Spaces, removing people, closing sockets) go
through the rooms services, which publish after commit.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import User
from accounts.ratelimit import Limit, hit
from accounts.selectors import is_moderator
from notifications.services import notify
from rooms.models import Space

from .models import NOTE_MAX, TEXT_MAX, AuditLog, Feedback, HostBlock, Report

log = logging.getLogger(__name__)


class DuplicateReport(ValidationError):
    """The reporter already has an open report on this target."""


# --- the audit log ---------------------------------------------------------------


def audit_participant_removed(*, space, participant, by, **kwargs) -> None:
    """rooms.hooks.participant_removed: a removal from a Space is an enforcement action."""
    audit_record(
        actor=by, action="participant_remove", target=participant.user, note=f"Removed from “{space.title}”"
    )


def audit_moderator_action(*, by, action: str, target, note: str = "", **kwargs) -> None:
    """accounts.hooks.moderator_acted: a moderator's action in an app below (ending or cancelling a
    Space in rooms, refunding a ticket in ticketing) gets its audit row in the same transaction."""
    audit_record(actor=by, action=action, target=target, note=note)


def audit_record(*, actor: User, action: str, target, note: str = "") -> AuditLog:
    """Write one audit row. Call it inside the transaction of the action it records, so the row and
    the action commit or roll back together. `target` is any saved model instance (a Space, an
    account, a report, a ticket…); its type, id and a label are copied, so the row outlives it."""
    if isinstance(target, Space):
        target_type, label = "space", f"“{target.title}” by {target.host}"
    elif isinstance(target, Report):
        target_type, label = "report", f"#{target.pk} on {target.target_label}"
    elif isinstance(target, User):
        target_type, label = "account", str(target)
    else:
        target_type, label = target._meta.model_name, f"{target._meta.verbose_name} #{target.pk}: {target}"
    return AuditLog.objects.create(
        actor=actor,
        actor_label=str(actor)[:64],
        action=action,
        target_type=target_type[:16],
        target_id=target.pk,
        target_label=label[:200],
        note=note[:NOTE_MAX],
    )


# --- reports ---------------------------------------------------------------------


def report_create(
    *, reporter: User, reason: str, text: str = "", space: Space | None = None, account: User | None = None
) -> Report:
    """File a report on a Space or an account (exactly one). One open report per reporter and target."""
    if not reporter.is_authenticated or not reporter.is_active:
        raise PermissionDenied("Sign in to report.")
    if (space is None) == (account is None):
        raise ValidationError("Report either a Space or an account.")
    if account is not None and account.pk == reporter.pk:
        raise ValidationError("You can't report yourself.")
    if reason not in Report.Reason.values:
        raise ValidationError("Choose a reason from the list.")
    text = (text or "").strip()
    if len(text) > TEXT_MAX:
        raise ValidationError(f"Keep the details to {TEXT_MAX} characters or fewer.")

    target = {"space": space} if space is not None else {"account": account}
    if Report.objects.filter(reporter=reporter, status=Report.Status.OPEN, **target).exists():
        raise DuplicateReport("You've already reported this. A moderator will look at it soon.")
    # The cache is shared by every process (Redis in production): the limit holds across workers.
    hit(
        f"moderation:reports:{reporter.pk}",
        Limit(settings.SPACES_REPORTS_PER_WINDOW, settings.SPACES_REPORTS_WINDOW_SECONDS),
        "You've sent several reports in a short time. Please wait a few minutes and try again.",
    )
    try:
        with transaction.atomic():
            return Report.objects.create(reporter=reporter, reason=reason, text=text, **target)
    except IntegrityError:  # the same report, sent twice at once: the constraint keeps one
        raise DuplicateReport("You've already reported this. A moderator will look at it soon.")


def _report_close(*, report: Report, by: User, note: str, status: str, action: str) -> Report:
    if not (by.is_staff and by.has_perm("moderation.change_report")):
        raise PermissionDenied("Only moderators can act on reports.")
    note = (note or "").strip()[:NOTE_MAX]
    with transaction.atomic():
        report = (
            Report.objects.select_for_update(of=("self",))
            .select_related("space", "account")
            .get(pk=report.pk)
        )
        if report.status != Report.Status.OPEN:
            raise ValidationError(f"Report #{report.pk} is already {report.get_status_display().lower()}.")
        report.status = status
        report.moderator_note = note
        report.handled_by = by
        report.handled_at = timezone.now()
        report.save(update_fields=["status", "moderator_note", "handled_by", "handled_at"])
        audit_record(actor=by, action=action, target=report, note=note)
        _notify_reporter(report=report)
    return report


def _notify_reporter(*, report: Report) -> None:
    outcome = "action was taken" if report.status == Report.Status.RESOLVED else "no rule was broken"
    notify(
        user=report.reporter,
        kind="report_outcome",
        title=f"We reviewed your report on {report.target_label}",
        body=f"A moderator reviewed it and {outcome}. Thank you for helping keep Spaces safe.",
        url=reverse("moderation:my_reports"),
        send_email=False,
        dedupe_key=f"report_outcome:{report.pk}",
    )


def report_resolve(*, report: Report, by: User, note: str = "") -> Report:
    """A moderator acted on the report (or found it valid). The reporter is told in-app."""
    return _report_close(
        report=report, by=by, note=note, status=Report.Status.RESOLVED, action=AuditLog.Action.REPORT_RESOLVE
    )


def report_dismiss(*, report: Report, by: User, note: str = "") -> Report:
    """A moderator found nothing to act on. The reporter is told in-app."""
    return _report_close(
        report=report, by=by, note=note, status=Report.Status.DISMISSED, action=AuditLog.Action.REPORT_DISMISS
    )


# --- host blocks -----------------------------------------------------------------


def host_block(*, host: User, user: User, note: str = "") -> HostBlock:
    """Keep `user` out of every Space `host` hosts, now and later. Anyone present in the host's live
    Spaces is removed at once (their sockets close)."""
    if not host.is_authenticated or not host.is_active:
        raise PermissionDenied("Sign in to block people.")
    if host.pk == user.pk:
        raise ValidationError("You can't block yourself.")
    with transaction.atomic():
        block, created = HostBlock.objects.get_or_create(host=host, blocked=user)
        if created:
            audit_record(actor=host, action=AuditLog.Action.HOST_BLOCK, target=user, note=note)
        live = Space.objects.filter(host=host, state=Space.State.LIVE)
        for space in live:
            _remove_from_space(space=space, user=user, by=host)
    return block


def host_unblock(*, host: User, user: User) -> bool:
    """Let `user` into the host's Spaces again. Returns False if they weren't blocked."""
    with transaction.atomic():
        deleted, _ = HostBlock.objects.filter(host=host, blocked=user).delete()
        if deleted:
            audit_record(actor=host, action=AuditLog.Action.HOST_UNBLOCK, target=user)
    return bool(deleted)


# --- feedback --------------------------------------------------------------------


def feedback_submit(*, space: Space, user: User, rating: int, comment: str = "") -> Feedback:
    """Record how the audio was. A second answer from the same person replaces the first, so the
    one-tap rating and the comment that may follow it are one row."""
    refusal = feedback_refusal(space=space, user=user)
    if refusal:
        raise PermissionDenied(refusal)
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError("Choose a rating from 1 to 5.")
    comment = (comment or "").strip()
    if len(comment) > TEXT_MAX:
        raise ValidationError(f"Keep the comment to {TEXT_MAX} characters or fewer.")
    feedback, _ = Feedback.objects.update_or_create(
        space=space, user=user, defaults={"rating": rating, "comment": comment}
    )
    return feedback


def feedback_refusal(*, space: Space, user: User) -> str | None:
    """Why `user` may not rate `space`, in words for them; None when they may (listeners, speakers
    and co-hosts who were in it; not its host)."""
    from rooms.models import Participant

    if not user.is_authenticated:
        return "Sign in to rate a Space."
    if space.host_id == user.pk:
        return "Hosts don't rate their own Spaces."
    if not Participant.objects.filter(space=space, user=user).exists():
        return "Only people who were in this Space can rate it."
    return None


# --- moderators' enforcement ---------------------------------------------------------


def _ensure_moderator(*, by: User, perm: str, what: str) -> None:
    if not is_moderator(user=by, perm=perm):
        raise PermissionDenied(f"Only moderators can {what}.")


def space_end_by_moderator(*, space: Space, by: User, note: str = "") -> Space:
    """End a live Space now: everyone in it is told and disconnected, and it can't restart."""
    _ensure_moderator(by=by, perm="rooms.end_space", what="end Spaces")
    with transaction.atomic():
        space = Space.objects.select_for_update(no_key=True).get(pk=space.pk)
        if space.state != Space.State.LIVE:
            raise ValidationError(f"“{space.title}” is not live, so there is nothing to end.")
        _end_space(space=space, by=by, note=note)  # its audit row: audit_moderator_action
    space.refresh_from_db()
    return space


def account_suspend(*, user: User, by: User, note: str = "") -> None:
    """Suspend an account: its live Spaces end, it is removed from every Space it is in, its sessions
    end and its sockets close at once; it can't sign in, host, buy or speak until reinstated (every
    door asks ``is_suspended``: sign-in, hosting eligibility, rooms.access.entry_refusal)."""
    _ensure_moderator(by=by, perm="accounts.change_user", what="suspend accounts")
    if user.pk == by.pk:
        raise PermissionDenied("You can't suspend yourself.")
    if user.is_suspended:
        raise ValidationError(f"{user} is already suspended.")
    from rooms.events import CLOSE_EVENT, publish_on_commit
    from rooms.models import Participant
    from rooms.protocol import CLOSE_FORCED

    with transaction.atomic():
        account_services.user_suspend(
            user=user, by=by, reason=note
        )  # refuses to touch superusers for non-superusers
        # Every socket of theirs, in any Space, closes once this commits (the per-user group of
        # rooms/events.py). Published first, so it reaches them before "removed" or "ended" does.
        publish_on_commit(
            None,
            {"type": CLOSE_EVENT, "code": CLOSE_FORCED, "message": "Your account has been suspended."},
            to_user=user.pk,
        )
        for space in Space.objects.filter(host=user, state=Space.State.LIVE):
            _end_space(space=space, by=by, note=f"Its host {user} was suspended.")
        present_in = Participant.objects.filter(
            user=user, removed_at=None, left_at=None, space__state=Space.State.LIVE
        ).select_related("space")
        for participant in present_in:
            _remove_from_space(space=participant.space, user=user, by=by)
        audit_record(actor=by, action=AuditLog.Action.ACCOUNT_SUSPEND, target=user, note=note)
    user.refresh_from_db()


def account_reinstate(*, user: User, by: User, note: str = "") -> None:
    _ensure_moderator(by=by, perm="accounts.change_user", what="reinstate accounts")
    if user.is_superuser and not by.is_superuser:
        raise PermissionDenied("Moderators can't change administrators.")
    if not user.is_suspended:
        raise ValidationError(f"{user} is not suspended.")
    with transaction.atomic():
        account_services.user_reinstate(user=user, by=by)
        audit_record(actor=by, action=AuditLog.Action.ACCOUNT_REINSTATE, target=user, note=note)
    user.refresh_from_db()


def _end_space(*, space: Space, by: User, note: str = "") -> None:
    from rooms import services as room_services

    try:
        room_services.space_end(space=space, by=by, note=note)
    except room_services.RoomError as exc:
        raise ValidationError(exc.message)


def _remove_from_space(*, space: Space, user: User, by: User) -> None:
    """Remove `user` from a live Space through the rooms service: they leave the stage, the room is
    told, their sockets there close and they can't rejoin."""
    from rooms import services as room_services

    try:
        room_services.participant_remove(space=space, by=by, user_id=user.pk)
    except room_services.NotInSpace:
        pass  # not there (or already removed): nothing to undo
