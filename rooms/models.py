from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from accounts.validators import validate_single_line

from .rules import TOPICS_MAX

TITLE_MAX = 70
TOPIC_MAX_CHARS = 24


def validate_topics(value) -> None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError("Topics must be a list of words.")
    if len(value) > TOPICS_MAX:
        raise ValidationError(f"Choose at most {TOPICS_MAX} topics.")
    for topic in value:
        if not topic.strip() or len(topic) > TOPIC_MAX_CHARS:
            raise ValidationError(f"Each topic must be 1 to {TOPIC_MAX_CHARS} characters.")
        validate_single_line(topic)


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
    # Off: anyone with the link may listen without an account (rooms.access.guest_refusal).
    signed_in_only = models.BooleanField(
        "Only signed-in listeners", default=False, help_text="People without an account can't listen."
    )
    recording_on = models.BooleanField(default=False)
    # Bumped by every change of stage state; snapshots and events carry it (docs/protocol.md).
    version = models.PositiveIntegerField(default=0)

    scheduled_for = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=32, blank=True)
    # Kept while live for the host's summary: the most listeners at once, and reactions sent.
    peak_listeners = models.PositiveIntegerField(default=0)
    reaction_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "-started_at"], name="space_state_started_idx")]
        permissions = [("end_space", "Can end any live Space")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("rooms:space", kwargs={"space_id": self.pk})

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE

    @property
    def socket_path(self) -> str:
        return f"/ws/spaces/{self.pk}/"


class Participant(models.Model):
    """One person in one Space: their role and stage state. One row per person per Space, kept after
    they leave (so a removal sticks and the host can see who came)."""

    class Role(models.TextChoices):
        HOST = "host", "Host"
        COHOST = "cohost", "Co-host"
        SPEAKER = "speaker", "Speaker"
        LISTENER = "listener", "Listener"

    STAGE_ROLES = (Role.HOST, Role.COHOST, Role.SPEAKER)

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LISTENER)
    # Everyone comes on stage muted: nobody is heard before they choose to be.
    muted = models.BooleanField(default=True)
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stage_since = models.DateTimeField(null=True, blank=True)
    was_on_stage = models.BooleanField(default=False, help_text="Ever on stage in this Space.")
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["space", "user"], name="participant_once_per_space")]
        indexes = [models.Index(fields=["space", "role"], name="participant_space_role_idx")]

    def __str__(self) -> str:
        return f"{self.user} in {self.space_id} as {self.role}"

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    @property
    def on_stage(self) -> bool:
        return self.role in self.STAGE_ROLES


class Connection(models.Model):
    """One open websocket. Presence is counted from these rows, and only from fresh ones: every
    process refreshes `seen_at` of its own sockets on a heartbeat, so the sockets of a process that
    died without saying goodbye stop counting after SPACES_PRESENCE_STALE_SECONDS and the sweep
    deletes them."""

    channel_name = models.CharField(max_length=200, unique=True)
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="connections")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="connections")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    process = models.CharField(max_length=64, db_index=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["space", "seen_at"], name="connection_space_seen_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.space_id} via {self.channel_name}"


class Audience(models.Model):
    """How many are listening in a Space, kept as they come and go so that a join or a leave is one
    constant-cost UPDATE (``F() + 1``) instead of a count over every connection under the Space's
    lock. Presence rows (``Connection``, ``GuestConnection``) stay the truth: the presence sweep
    recounts from them (``rooms.services.audience_recount``), which corrects any drift left by a
    process that died between its write and its commit hook, or by sockets gone stale."""

    space = models.OneToOneField(Space, on_delete=models.CASCADE, primary_key=True, related_name="audience")
    listeners = models.IntegerField(default=0, help_text="Signed-in people in the audience, present now.")
    guests = models.IntegerField(default=0, help_text="People listening without an account, present now.")
    # The most at once (listeners + guests), for the host's summary; kept here, not on the Space
    # row, so that a join never writes (and so never waits for) the Space row.
    peak = models.IntegerField(default=0)
    # Bumped by every change: the count events carry it, so a process's hub never lets an older
    # count, delivered late, overwrite a newer one.
    seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Audience of {self.space_id}: {self.listeners} + {self.guests} guests"

    @property
    def count(self) -> int:
        return max(self.listeners, 0) + max(self.guests, 0)


class GuestConnection(models.Model):
    """One open websocket of someone listening without an account. Guests have no Participant: they
    only listen, so all a Space keeps of them is presence, counted and swept like ``Connection``.
    ``guest_key`` comes from the signed guest cookie (the same person across reloads and tabs; a
    fresh one per socket when the browser keeps no cookie, as in another site's iframe)."""

    channel_name = models.CharField(max_length=200, unique=True)
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="guest_connections")
    guest_key = models.CharField(max_length=32)
    ip = models.CharField(max_length=45, db_index=True)
    process = models.CharField(max_length=64, db_index=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["space", "seen_at"], name="guestconn_space_seen_idx")]

    def __str__(self) -> str:
        return f"guest {self.guest_key[:8]} in {self.space_id} via {self.channel_name}"

    @property
    def signal_id(self) -> int:
        """This socket's id in WebRTC signalling: negative, so it never names a person."""
        return -self.pk


class CaptionLine(models.Model):
    """One finished caption (a recognised utterance), kept for the Space's transcript.

    The speaker's name is copied as it was shown, so a transcript reads the same after a rename
    or a deleted account."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="caption_lines")
    speaker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    speaker_name = models.CharField(max_length=150)
    start = models.FloatField(help_text="Seconds since the Space started.")
    end = models.FloatField(help_text="Seconds since the Space started.")
    text = models.TextField()
    # The utterance's speech (WAV), kept only until the transcript is improved after the end.
    audio = models.FileField(upload_to="captions/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "pk"]
        indexes = [models.Index(fields=["space", "start"], name="captionline_space_start_idx")]

    def __str__(self) -> str:
        return f"{self.speaker_name}: {self.text[:40]}"


class Transcript(models.Model):
    """What the host decided about a Space's captions: kept private (the default, no row needed),
    published on the ended Space page, or deleted for good."""

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="transcript")
    published_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    improved_at = models.DateTimeField(null=True, blank=True, help_text="Re-decoded after the Space ended.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        state = "deleted" if self.deleted_at else "published" if self.published_at else "private"
        return f"Transcript of {self.space_id} ({state})"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None and self.deleted_at is None


class Reminder(models.Model):
    """Someone asked to hear when a scheduled Space starts (rooms.reminders)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="reminders")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "space"], name="reminder_once")]
        indexes = [models.Index(fields=["space", "user"], name="reminder_space_idx")]

    def __str__(self) -> str:
        return f"{self.user} → {self.space_id}"


class ScheduleRevision(models.Model):
    """How many times a scheduled Space has moved: the SEQUENCE of its calendar event."""

    space = models.OneToOneField(
        Space, on_delete=models.CASCADE, primary_key=True, related_name="schedule_revision"
    )
    sequence = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Space {self.space_id} revision {self.sequence}"


class SpaceSummary(models.Model):
    """The host's figures for a Space that went live, computed once when it ends (rooms.services
    `space_end`) from what was stored while it ran, and kept."""

    space = models.OneToOneField(Space, on_delete=models.CASCADE, primary_key=True, related_name="summary")
    duration_seconds = models.PositiveIntegerField()
    peak_listeners = models.PositiveIntegerField()
    total_listeners = models.PositiveIntegerField(help_text="Different people who joined, besides the host.")
    speakers = models.PositiveIntegerField(help_text="People besides the host who were on stage.")
    reactions = models.PositiveIntegerField()
    caption_lines = models.PositiveIntegerField()
    # Figures the apps above rooms add (ticketing: tickets sold, revenue), as [{key, label, value}].
    extra_figures = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "Space summaries"

    def __str__(self) -> str:
        return f"Summary of {self.space_id}"

    @property
    def duration_minutes(self) -> int:
        return round(self.duration_seconds / 60)


def _replay_path(instance, filename: str) -> str:
    return f"replays/{instance.space_id}/{filename}"


def _chunk_path(instance, filename: str) -> str:
    return f"recordings/{instance.recording.space_id}/{instance.session}/{filename}"


class Recording(models.Model):
    """A Space's recording: captured while live (rooms.recordings), made into a replay by a Celery
    task once the Space ends. Deleting the row deletes its files (rooms.recordings.service)."""

    class State(models.TextChoices):
        CAPTURING = "capturing", "Recording"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Mode(models.TextChoices):
        P2P = "p2p", "Host's browser (peer-to-peer)"
        JANUS = "janus", "Janus AudioBridge"

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="recording")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.P2P)
    state = models.CharField(max_length=12, choices=State.choices, default=State.CAPTURING, db_index=True)
    # Stretches of the Space that were recorded, in seconds since it started: [[start, end|null], ...].
    # The replay is these stretches back to back; captions and chapters are mapped through them.
    spans = models.JSONField(default=list, blank=True)
    # The Janus AudioBridge's own recordings (WAVs in JANUS_RECORDING_DIR, one per stretch).
    janus_files = models.JSONField(default=list, blank=True)
    in_podcast = models.BooleanField(default=False, help_text="Listed in the host's podcast feed.")
    web_audio = models.FileField(upload_to=_replay_path, blank=True)
    podcast_audio = models.FileField(upload_to=_replay_path, blank=True)
    duration_seconds = models.FloatField(default=0)
    web_size = models.PositiveBigIntegerField(default=0)
    podcast_size = models.PositiveBigIntegerField(default=0)
    waveform = models.JSONField(default=list, blank=True)
    play_count = models.PositiveIntegerField(default=0)
    guid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"Recording of {self.space_id} ({self.state})"

    @property
    def is_ready(self) -> bool:
        return self.state == self.State.READY


class RecordingChunk(models.Model):
    """A numbered piece of a peer-to-peer capture, uploaded by the recording browser every few
    seconds. One `session` per page load: its chunks, in order, make one playable WebM stream."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="chunks")
    session = models.CharField(max_length=32)
    seq = models.PositiveIntegerField()
    file = models.FileField(upload_to=_chunk_path)
    size = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "session", "seq"], name="recordingchunk_once")
        ]

    def __str__(self) -> str:
        return f"{self.recording_id}/{self.session}/{self.seq}"


class SpeakerMark(models.Model):
    """Someone on stage started talking after someone else: the replay's chapters by speaker."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="speaker_marks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    name = models.CharField(max_length=150)
    at = models.FloatField(help_text="Seconds since the Space started.")

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["space", "at"], name="speakermark_space_at_idx")]

    def __str__(self) -> str:
        return f"{self.name} at {self.at:.0f}s in {self.space_id}"
