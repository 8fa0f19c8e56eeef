"""Reads that pages share. Each returns a queryset or value with its joins already done."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from .models import Follow, User


def user_with_follow_state(*, username: str, viewer) -> QuerySet[User]:
    qs = User.objects.filter(username__iexact=username)
    if viewer.is_authenticated:
        qs = qs.annotate(
            viewer_follows=Exists(Follow.objects.filter(follower=viewer, followee=OuterRef("pk"))),
            follows_viewer=Exists(Follow.objects.filter(follower=OuterRef("pk"), followee=viewer)),
        )
    return qs


def followers_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(following_set__followee=user).order_by("-following_set__created_at", "-pk")


def following_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(follower_set__follower=user).order_by("-follower_set__created_at", "-pk")


def is_following(*, follower, followee: User) -> bool:
    if not follower.is_authenticated:
        return False
    return Follow.objects.filter(follower=follower, followee=followee).exists()


def is_moderator(*, user, perm: str) -> bool:
    """The one moderator check: an active staff account holding `perm` (the Moderators group's
    permissions, accounts.groups, or a superuser's)."""
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(perm))
