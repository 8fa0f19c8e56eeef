"""Reads about captions: who may be captioned now, and what of a transcript a person may see."""

from __future__ import annotations

from dataclasses import dataclass

from rooms.models import CaptionLine, Participant, Space, Transcript

from .webvtt import CaptionLine as RenderedLine

# Why caption audio is refused (besides the frame codes of rooms/captions/frames.py).
NOT_LIVE = "not_live"
CAPTIONS_OFF = "captions_off"
NOT_ON_STAGE = "not_on_stage"
MUTED = "muted"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def caption_sender_refusal(*, space_id: int, user_id: int) -> Refusal | None:
    """Why this person's microphone may not be captioned now, or None when it may.

    Entry (rooms/access.py) is checked when the captions socket opens; this is the role check,
    asked again whenever the person's stage state or the Space's captions change."""
    space = Space.objects.filter(pk=space_id).only("state", "captions_enabled").first()
    if space is None or space.state != Space.State.LIVE:
        return Refusal(NOT_LIVE, "This Space isn't live, so nothing is captioned.")
    if not space.captions_enabled:
        return Refusal(CAPTIONS_OFF, "Captions are off in this Space. The host can turn them on.")
    participant = (
        Participant.objects.filter(space_id=space_id, user_id=user_id)
        .only("role", "muted", "removed_at")
        .first()
    )
    if participant is None or participant.removed_at is not None or not participant.on_stage:
        return Refusal(NOT_ON_STAGE, "Only people on stage are captioned. Ask the host to bring you up.")
    if participant.muted:
        return Refusal(MUTED, "You're muted, so nothing is captioned. Unmute to be captioned.")
    return None


def transcript_of(*, space: Space) -> Transcript | None:
    return Transcript.objects.filter(space=space).first()


def transcript_lines(*, space: Space):
    return CaptionLine.objects.filter(space=space).order_by("start", "pk")


def rendered_lines(*, space: Space) -> list[RenderedLine]:
    return [
        RenderedLine(speaker=line.speaker_name, start=line.start, end=line.end, text=line.text)
        for line in transcript_lines(space=space).only("speaker_name", "start", "end", "text")
    ]


def transcript_is_host(*, space: Space, user) -> bool:
    return getattr(user, "is_authenticated", False) and user.pk == space.host_id


def transcript_visible_to(*, space: Space, user, transcript: Transcript | None) -> bool:
    """The host sees their transcript once the Space has started; everyone else only once the host
    has published it (published transcripts are public, like the ended Space page itself)."""
    if transcript is not None and transcript.deleted_at is not None:
        return False
    if transcript_is_host(space=space, user=user):
        return space.state in (Space.State.LIVE, Space.State.ENDED)
    return space.state == Space.State.ENDED and transcript is not None and transcript.is_published
