"""Reads for replays: who may hear one, its timeline (captions, chapters) and a host's list."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from ..access import entry_rules_refusal
from ..captions.webvtt import CaptionLine as VttLine
from ..models import CaptionLine, Participant, Recording, Space, SpeakerMark, Transcript

FEED_ITEMS = 100


def replay_of(*, space_id: int) -> Recording | None:
    """The published replay of an ended Space, with its Space and host; None when there is none."""
    return (
        Recording.objects.select_related("space", "space__host")
        .filter(space_id=space_id, state=Recording.State.READY, space__state=Space.State.ENDED)
        .first()
    )


def replay_refusal(*, recording: Recording, user) -> str | None:
    """Why `user` may not hear this replay; None when they may. The same registered rules as the
    live Space (rooms.hooks.entry_rules): a ticketed Space's replay is for its ticket holders."""
    return entry_rules_refusal(space=recording.space, user=user)


def replay_is_public(*, recording: Recording) -> bool:
    """Can anyone at all hear it (no ticket, no account)? Only such replays go in a podcast feed."""
    return replay_refusal(recording=recording, user=AnonymousUser()) is None


@dataclass(frozen=True)
class Timeline:
    """Maps Space time (seconds since it started) to replay time through the recorded stretches."""

    spans: list[tuple[float, float]]

    @classmethod
    def of(cls, recording: Recording) -> Timeline:
        spans = [(float(a), float(b if b is not None else a)) for a, b in recording.spans]
        return cls(spans=[(a, b) for a, b in spans if b > a])

    def at(self, t: float) -> float | None:
        offset = 0.0
        for a, b in self.spans:
            if a <= t < b:
                return round(offset + t - a, 3)
            offset += b - a
        return None

    def starts(self) -> list[tuple[float, float]]:
        """(Space time, replay time) where each stretch begins."""
        out, offset = [], 0.0
        for a, b in self.spans:
            out.append((a, offset))
            offset += b - a
        return out


def replay_captions(*, recording: Recording) -> list[VttLine] | None:
    """The live captions on the replay's clock; None when the host deleted the transcript (its
    words then appear nowhere)."""
    if Transcript.objects.filter(space_id=recording.space_id, deleted_at__isnull=False).exists():
        return None
    timeline = Timeline.of(recording)
    lines = []
    for line in CaptionLine.objects.filter(space_id=recording.space_id).only(
        "speaker_name", "start", "end", "text"
    ):
        start = timeline.at(line.start)
        if start is None:
            continue
        lines.append(
            VttLine(
                speaker=line.speaker_name,
                start=start,
                end=start + max(0.0, line.end - line.start),
                text=line.text,
            )
        )
    return lines


def replay_chapters(*, recording: Recording) -> list[dict]:
    """Chapters by speaker: [{"start": seconds in the replay, "name"}], from the stage's speaking
    events. Whoever was talking when a stretch began opens it."""
    timeline = Timeline.of(recording)
    marks = list(SpeakerMark.objects.filter(space_id=recording.space_id).values_list("at", "name"))
    points: list[tuple[float, str]] = []
    for space_at, replay_at in timeline.starts():
        before = [name for at, name in marks if at <= space_at]
        points.append((replay_at, before[-1] if before else recording.space.host.name))
    for at, name in marks:
        replay_at = timeline.at(at)
        if replay_at is not None:
            points.append((replay_at, name))
    points.sort(key=lambda p: p[0])
    chapters: list[dict] = []
    for start, name in points:
        if chapters and chapters[-1]["name"] == name:
            continue
        if chapters and start - chapters[-1]["start"] < 1.0:
            chapters[-1] = {"start": chapters[-1]["start"], "name": name}
            continue
        chapters.append({"start": start, "name": name})
    if recording.duration_seconds:
        chapters = [c for c in chapters if c["start"] < recording.duration_seconds]
    return chapters


def replay_speakers(*, space: Space) -> list:
    return [
        p.user
        for p in Participant.objects.filter(space=space, was_on_stage=True)
        .exclude(user_id=space.host_id)
        .select_related("user")
        .order_by("stage_since", "pk")
    ]


def replays_of_host(*, host) -> QuerySet[Recording]:
    return (
        Recording.objects.filter(
            space__host=host, state=Recording.State.READY, space__state=Space.State.ENDED
        )
        .select_related("space", "space__host")
        .order_by("-space__ended_at", "-pk")
    )


def podcast_items(*, host) -> list[Recording]:
    """The replays a host put in their podcast that anyone may hear, newest first."""
    candidates = replays_of_host(host=host).filter(in_podcast=True)[:FEED_ITEMS]
    return [recording for recording in candidates if replay_is_public(recording=recording)]
