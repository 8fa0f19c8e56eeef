"""Demo data for `make run`: one finished Space with a short generated replay, chapters and captions."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from ..models import CaptionLine, Participant, Recording, RecordingChunk, Space, SpeakerMark
from .processing import RATE, encode, recording_process

DEMO_TITLE = "Replay: how community radio works"
SECONDS = 24
LINES = [
    (0.5, 5.5, "Welcome back, this one was recorded so you can listen again."),
    (8.5, 13.5, "Community radio runs on volunteers and a shared transmitter."),
    (16.5, 22.0, "And the archive is an ordinary audio file the host owns."),
]


def _voice(seconds: float, hz: float, talking: list[tuple[float, float]], offset: float) -> np.ndarray:
    """A speech-like hum: a tone in syllables and words, heard only while `talking` (the caption
    lines' times, which are relative to the whole replay; this voice starts at `offset`)."""
    t = np.arange(int(seconds * RATE)) / RATE
    syllables = np.abs(np.sin(2 * np.pi * 2.5 * t))
    words = (np.sin(2 * np.pi * 0.7 * t) + 0.6 * np.sin(2 * np.pi * 1.9 * t)) > -0.5
    phrase = np.zeros_like(t, dtype=bool)
    for start, end in talking:
        phrase |= (t + offset >= start) & (t + offset < end)
    return (0.2 * syllables * words * phrase * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def demo_replay_seed(sender, *, host, people, **kwargs) -> str | None:
    if Space.objects.filter(host=host, title=DEMO_TITLE).exists():
        return None
    speaker = people[0] if people else host
    now = timezone.now()
    with transaction.atomic():
        space = Space.objects.create(
            host=host,
            title=DEMO_TITLE,
            topics=["radio", "open source"],
            state=Space.State.ENDED,
            started_at=now - dt.timedelta(minutes=30),
            ended_at=now - dt.timedelta(minutes=29, seconds=60 - SECONDS),
            ended_reason="host",
            captions_enabled=True,
        )
        Participant.objects.create(
            space=space, user=host, role=Participant.Role.HOST, was_on_stage=True, left_at=now
        )
        Participant.objects.create(
            space=space, user=speaker, role=Participant.Role.SPEAKER, was_on_stage=True, left_at=now
        )
        names = [host, speaker, host]
        for (start, end, text), person in zip(LINES, names, strict=True):
            CaptionLine.objects.create(
                space=space, speaker=person, speaker_name=person.name, start=start, end=end, text=text
            )
            SpeakerMark.objects.create(space=space, user=person, name=person.name, at=max(0.0, start - 0.5))
        recording = Recording.objects.create(
            space=space, state=Recording.State.PROCESSING, spans=[[0.0, float(SECONDS)]], in_podcast=True
        )
        talking = [(start, end) for start, end, _text in LINES]
        audio = np.concatenate(
            [_voice(8, hz, talking, offset) for hz, offset in ((220, 0), (330, 8), (247, 16))]
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "capture.webm"
            encode(audio, path, fmt="webm", codec="libopus", bit_rate=32_000)
            chunk = RecordingChunk(recording=recording, session="demo0001", seq=0, size=path.stat().st_size)
            with path.open("rb") as f:
                chunk.file.save("000000.webm", File(f), save=True)
    recording_process(recording_id=recording.pk)
    return f"A finished Space with a replay: /spaces/{space.pk}/replay/"
