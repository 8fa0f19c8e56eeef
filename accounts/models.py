from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

TIME_ZONE_CHOICES = sorted((tz, tz.replace("_", " ")) for tz in zoneinfo.available_timezones())


class User(AbstractUser):
    """A person on Spaces. Follower counts are kept on the row so every page can show them cheaply;
    they are only ever changed by `accounts.services` with F() expressions inside the follow transaction."""

    username = models.CharField(
        max_length=30,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9_]+$",
                "Use only letters, numbers and underscores.",
            )
        ],
        help_text="Up to 30 letters, numbers or underscores. This is your @handle.",
        error_messages={"unique": "That handle is taken. Try another."},
    )
    email = models.EmailField("email address", blank=True)
    display_name = models.CharField(max_length=50, blank=True)
    bio = models.TextField(max_length=300, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    avatar_small = models.ImageField(upload_to="avatars/", blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")

    follower_count = models.PositiveIntegerField(default=0)
    following_count = models.PositiveIntegerField(default=0)

    hosting_granted = models.BooleanField(
        default=False, help_text="Staff let this account host before it reaches the follower threshold."
    )
    is_suspended = models.BooleanField(default=False)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.TextField(blank=True, help_text="Shown to the person, with how to appeal.")

    class Meta:
        indexes = [models.Index(fields=["-follower_count"], name="user_follower_count_idx")]

    def __str__(self) -> str:
        return f"@{self.username}"

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def initials(self) -> str:
        return (self.name[:1] or "?").upper()

    def get_absolute_url(self) -> str:

        return reverse("profile", kwargs={"username": self.username})


class Follow(models.Model):
    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="following_set")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="follower_set")
    created_at = models.DateTimeField(auto_now_add=True)
    # "Notify me by email when <followee> goes live": off until the follower asks, per host. The
    # in-app go-live notice needs no opt-in; following is the ask.
    email_on_live = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_once"),
            models.CheckConstraint(condition=~Q(follower=F("followee")), name="no_self_follow"),
        ]
        indexes = [models.Index(fields=["followee", "-created_at"], name="follow_followee_idx")]

    def __str__(self) -> str:
        return f"{self.follower} follows {self.followee}"


class SignedInSession(models.Model):
    """Which sessions a person is signed in with, so ending them (suspension) reads only theirs,
    never every session on the site. Written on sign-in, removed on sign-out; a row whose session
    has expired on its own is harmless (deleting a missing session does nothing)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user"], name="signed_in_session_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.session_key[:6]}…"
