"""Every write to accounts goes through here (views, admin and commands call these)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import rules
from .models import Follow, SignedInSession, User
from .validators import validate_single_line


class NotEligible(PermissionDenied):
    """Raised when a user tries to do something their account does not qualify for."""


@dataclass(frozen=True)
class HostingEligibility:
    allowed: bool
    followers: int
    needed: int
    granted: bool
    suspended: bool

    @property
    def reason(self) -> str:
        if self.suspended:
            return "Your account is suspended, so you can't host Spaces."
        if self.allowed:
            return ""
        return f"{self.followers:,} of {self.needed:,} followers"


def hosting_eligibility(*, user: User) -> HostingEligibility:
    needed = settings.SPACES_HOST_MIN_FOLLOWERS
    followers = user.follower_count
    suspended = user.is_suspended
    allowed = not suspended and (user.hosting_granted or followers >= needed)
    return HostingEligibility(
        allowed=allowed, followers=followers, needed=needed, granted=user.hosting_granted, suspended=suspended
    )


def hosting_ensure_allowed(*, user: User) -> None:
    """The single check behind every way of starting or scheduling a Space."""
    if not user.is_authenticated:
        raise NotEligible("Sign in to host a Space.")
    user.refresh_from_db(fields=["follower_count", "hosting_granted", "is_suspended"])
    eligibility = hosting_eligibility(user=user)
    if not eligibility.allowed:
        raise NotEligible(eligibility.reason or "You can't host yet.")


def _bump_counts(*, follower_id: int, followee_id: int, delta: int) -> None:
    # Lock rows in primary-key order so that A-follows-B racing B-follows-A cannot deadlock.
    for pk in sorted((follower_id, followee_id)):
        if pk == followee_id:
            User.objects.filter(pk=pk).update(follower_count=F("follower_count") + delta)
        else:
            User.objects.filter(pk=pk).update(following_count=F("following_count") + delta)


def follow_create(*, follower: User, followee: User) -> bool:
    """Follow someone. Returns True if a new follow was made, False if it already existed."""
    if follower.pk == followee.pk:
        raise ValidationError("You can't follow yourself.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                Follow.objects.create(follower=follower, followee=followee)
        except IntegrityError:
            return False
        _bump_counts(follower_id=follower.pk, followee_id=followee.pk, delta=1)
    return True


def follow_delete(*, follower: User, followee: User) -> bool:
    """Unfollow. Returns True if a follow was removed, False if there was none."""
    with transaction.atomic():
        deleted, _ = Follow.objects.filter(follower=follower, followee=followee).delete()
        if not deleted:
            return False
        _bump_counts(follower_id=follower.pk, followee_id=followee.pk, delta=-1)
    return True


def follow_email_on_live_set(*, follower: User, followee: User, on: bool) -> bool:
    """Turn "email me when `followee` goes live" on or off. Only a follower can have it; returns
    whether anything changed (False too when `follower` does not follow `followee`)."""
    return bool(
        Follow.objects.filter(follower=follower, followee=followee)
        .exclude(email_on_live=on)
        .update(email_on_live=on)
    )


def profile_update(
    *,
    user: User,
    display_name: str,
    bio: str,
    time_zone: str,
    date_of_birth: datetime.date | None = None,
    avatar_crops: dict | None = None,
) -> User:
    """Save profile fields; `avatar_crops` is the output of `accounts.avatars.process_avatar`."""
    validate_single_line(display_name)
    user.display_name = display_name
    user.bio = bio
    user.time_zone = time_zone
    user.date_of_birth = date_of_birth
    fields = ["display_name", "bio", "time_zone", "date_of_birth"]
    if avatar_crops:
        large, small = (avatar_crops[size] for size in rules.AVATAR_SIZES)
        # Names now: FieldFile.save() renames the same object, so the old names must be read first.
        old = [(f.storage, f.name) for f in (user.avatar, user.avatar_small) if f]
        user.avatar.save(large.name, large, save=False)
        user.avatar_small.save(small.name, small, save=False)
        fields += ["avatar", "avatar_small"]
        for storage, name in old:
            transaction.on_commit(lambda storage=storage, name=name: storage.delete(name))
    user.full_clean(exclude=["password", "username", "email", "avatar", "avatar_small"])
    user.save(update_fields=fields)
    return user


def user_grant_hosting(*, user: User, by: User) -> None:
    if not by.is_staff:
        raise PermissionDenied("Only staff can grant hosting.")
    User.objects.filter(pk=user.pk).update(hosting_granted=True)


def user_suspend(*, user: User, by: User, reason: str = "") -> None:
    """Suspend an account: it can no longer sign in or host. Other apps react to `is_suspended`.
    `reason` is shown to the person when they try to sign in, with how to appeal."""
    if not by.is_staff:
        raise PermissionDenied("Only staff can suspend accounts.")
    if user.is_superuser and not by.is_superuser:
        raise PermissionDenied("Moderators can't suspend administrators.")
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(
            is_suspended=True, is_active=False, suspended_at=timezone.now(), suspension_reason=reason.strip()
        )
        _end_sessions(user_id=user.pk)


def user_reinstate(*, user: User, by: User) -> None:
    if not by.is_staff:
        raise PermissionDenied("Only staff can reinstate accounts.")
    User.objects.filter(pk=user.pk).update(
        is_suspended=False, is_active=True, suspended_at=None, suspension_reason=""
    )


def session_signed_in(*, user: User, session_key: str | None) -> None:
    """Remember that `user` is signed in with this session (the user_logged_in signal)."""
    if not session_key:
        return
    SignedInSession.objects.update_or_create(session_key=session_key, defaults={"user": user})
    # Sessions that expired on their own leave rows behind: forget this person's old ones.
    cutoff = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    SignedInSession.objects.filter(user=user, created_at__lt=cutoff).delete()


def session_signed_out(*, session_key: str | None) -> None:
    if session_key:
        SignedInSession.objects.filter(session_key=session_key).delete()


def _end_sessions(*, user_id: int) -> None:
    """End every session `user_id` is signed in with: only theirs are read (SignedInSession)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = list(SignedInSession.objects.filter(user_id=user_id).values_list("session_key", flat=True))
    # Through the session engine, so a cached copy (SESSION_ENGINE cached_db) goes with the row.
    for session_key in keys:
        store(session_key=session_key).delete()
    SignedInSession.objects.filter(user_id=user_id, session_key__in=keys).delete()
