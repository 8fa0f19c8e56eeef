from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

TITLE_MAX = 70
TOPICS_MAX = 3
TOPIC_MAX_CHARS = 24


def validate_topics(value) -> None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError("Topics must be a list of words.")
    if len(value) > TOPICS_MAX:
        raise ValidationError(f"Choose at most {TOPICS_MAX} topics.")
    for topic in value:
        if not topic.strip() or len(topic) > TOPIC_MAX_CHARS:
            raise ValidationError(f"Each topic must be 1 to {TOPIC_MAX_CHARS} characters.")


class Space(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    class SpeakPolicy(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        FOLLOWED = "followed", "People you follow"
        INVITED = "invited", "Only people you invite"

    host = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hosted_spaces")
    title = models.CharField(max_length=TITLE_MAX)
    topics = models.JSONField(default=list, blank=True, validators=[validate_topics])
    speak_policy = models.CharField(max_length=16, choices=SpeakPolicy.choices, default=SpeakPolicy.EVERYONE)
    state = models.CharField(max_length=16, choices=State.choices, default=State.LIVE, db_index=True)
    captions_enabled = models.BooleanField(default=False)

    scheduled_for = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "-started_at"], name="space_state_started_idx")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("rooms:space", kwargs={"space_id": self.pk})

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE
