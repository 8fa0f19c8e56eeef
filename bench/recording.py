"""Recording benchmark: time from a Space's end to its published replay, for a long capture.

    .venv/bin/python bench/recording.py [--minutes 60]

Builds a real peer-to-peer capture (Opus in WebM, as the host's browser's MediaRecorder makes it:
three alternating speakers' tones), stores it as 5-second chunks in a scratch SQLite database and
media folder, then times rooms.recordings.processing.recording_process: decoding every chunk,
loudness normalisation, the Opus and AAC encodes, the waveform and saving through the storage API.
Prints one JSON line; the floor is the issue's target (60 s for 60 minutes of audio).

Not measured here (not done): the CPU cost of capturing in each audio mode while 3 speakers talk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_SECONDS_PER_HOUR = 60.0
CHUNK_SECONDS = 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="spaces_project.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{scratch / 'db.sqlite3'}",
        MEDIA_ROOT=str(scratch / "media"),
    )
    import django

    django.setup()
    import numpy as np
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Recording, RecordingChunk, Space
    from rooms.recordings.processing import RATE, encode, recording_process

    call_command("migrate", verbosity=0)
    seconds = int(args.minutes * 60)
    t = np.arange(RATE * 20) / RATE
    turns = [(0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32) for hz in (220, 440, 660)]
    audio = np.concatenate([turns[i % 3] for i in range(seconds // 20 + 1)])[: seconds * RATE]
    capture = scratch / "capture.webm"
    encode(audio, capture, fmt="webm", codec="libopus", bit_rate=32_000)
    del audio
    data = capture.read_bytes()
    host = User.objects.create(username="benchhost", display_name="Bench Host")
    now = timezone.now()
    space = Space.objects.create(
        host=host, title="Bench", state=Space.State.ENDED, started_at=now, ended_at=now
    )
    recording = Recording.objects.create(
        space=space, state=Recording.State.PROCESSING, spans=[[0.0, seconds]]
    )
    n = seconds // CHUNK_SECONDS
    size = -(-len(data) // n)
    for seq in range(n):
        chunk = RecordingChunk(recording=recording, session="bench0001", seq=seq)
        piece = data[seq * size : (seq + 1) * size]
        chunk.size = len(piece)
        chunk.file.save(f"{seq:06d}.webm", ContentFile(piece), save=True)

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    done = recording_process(recording_id=recording.pk)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    target = TARGET_SECONDS_PER_HOUR * args.minutes / 60
    print(
        json.dumps(
            {
                "bench": "recording",
                "audio_minutes": args.minutes,
                "chunks": n,
                "end_to_published_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "target_s": target,
                "meets_target": wall <= target,
                "replay_duration_s": done.duration_seconds,
                "opus_bytes": done.web_size,
                "m4a_bytes": done.podcast_size,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
