"""Recording benchmark: what capturing a Space costs in each audio mode, and how long from its end
to the published replay for a long capture.

    .venv/bin/python bench/recording.py [--part all|capture|processing] [--minutes 60] [--window 15]

Capture (both audio modes, real Chromium and, for Janus mode, Janus from Debian's package): a
live Space with 3 speakers on stage, each a Chromium whose fake microphone plays a tone (220, 440,
660 Hz), all unmuted. The CPU of each process involved is read from /proc over alternating windows
of `--window` seconds with recording off and on (off, on, off, on), and reported as percent of one
core, averaged per state: daphne, Janus, the host's Chromium (with its renderers; in peer-to-peer
the host's browser records the mix and uploads it in chunks) and all three Chromiums. The cost of
recording is the difference on minus off.

Processing: a real peer-to-peer capture of `--minutes` of audio (Opus in WebM, as the host's
browser's MediaRecorder makes it: three alternating speakers' tones) stored as 5-second chunks, then
rooms.recordings.processing.recording_process timed: decoding every chunk, loudness normalisation,
the Opus and AAC encodes, the waveform and saving through the storage API. The floor is the
issue's target (60 s for 60 minutes of audio).

Prints one JSON line.
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

from bench.common import (  # noqa: E402
    browser_bench_django,
    pid_with_argument,
    process_cpu_seconds,
    process_tree_cpu_seconds,
)

TARGET_SECONDS_PER_HOUR = 60.0
CHUNK_SECONDS = 5


def processing(minutes: float, workdir: Path) -> dict:
    import numpy as np
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Recording, RecordingChunk, Space
    from rooms.recordings.processing import RATE, encode, recording_process

    seconds = int(minutes * 60)
    t = np.arange(RATE * 20) / RATE
    turns = [(0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32) for hz in (220, 440, 660)]
    audio = np.concatenate([turns[i % 3] for i in range(seconds // 20 + 1)])[: seconds * RATE]
    capture = workdir / "capture.webm"
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
    target = TARGET_SECONDS_PER_HOUR * minutes / 60
    return {
        "audio_minutes": minutes,
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


def capture_cpu(mode: str, window: float, workdir: Path, playwright) -> dict:
    from rooms import services
    from rooms.models import Recording
    from tests.audio_tools import launch_browser, write_tone_wav
    from tests.conftest import start_asgi_server, stop_process
    from tests.factories import UserFactory
    from tests.test_audio_browser import act, bring_on_stage, open_space

    env = {
        "SQLITE_PATH": os.environ["SQLITE_PATH"],
        "MEDIA_ROOT": os.environ["MEDIA_ROOT"],
        "JANUS_RECORDING_DIR": str(workdir / f"janus-recordings-{mode}"),
        "JANUS_URL": "",
    }
    janus_process = None
    if mode == "janus":
        from tests.janus_fixture import start_janus, stop_janus

        janus_process, janus = start_janus(workdir / f"janus-{mode}")
        env.update({k: str(v) for k, v in janus.settings().items()})
    server = start_asgi_server(extra_env=env, name=f"bench-recording-{mode}")
    browsers, pids = {}, {}
    try:
        for who, hz in (("host", 220), ("speaker1", 440), ("speaker2", 660)):
            tag = f"--spaces-bench-recording={mode}-{who}-{os.getpid()}"
            wav = write_tone_wav(workdir / f"tone-{hz}.wav", hz)
            browsers[who] = launch_browser(playwright, wav=wav, extra_args=[tag])
            pids[who] = pid_with_argument(tag)
        host, speakers = UserFactory(hosting_granted=True), [UserFactory(), UserFactory()]
        space = services.space_create(host=host, title=f"Recording CPU over {mode}")
        host_page = open_space(browsers["host"], server, host, space)
        act(host_page, type="unmute_self")
        for who, user in zip(("speaker1", "speaker2"), speakers, strict=True):
            bring_on_stage(host_page, open_space(browsers[who], server, user, space), space, user)
        time.sleep(5)  # every connection is up and carrying audio

        groups = {
            "daphne": lambda: process_cpu_seconds(server.proc.pid),
            "host_chromium": lambda: process_tree_cpu_seconds(pids["host"]),
            "all_chromium": lambda: sum(process_tree_cpu_seconds(pid) for pid in pids.values()),
        }
        if janus_process is not None:
            groups["janus"] = lambda: process_cpu_seconds(janus_process.pid)
        spent: dict[str, dict[str, list[float]]] = {"off": {}, "on": {}}
        for state in ("off", "on", "off", "on"):
            act(host_page, type="recording_toggle", on=state == "on")
            time.sleep(3)  # the recorder (or Janus) has started or stopped
            before = {name: read() for name, read in groups.items()}
            t0 = time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - t0
            for name, read in groups.items():
                pct = 100 * (read() - before[name]) / elapsed
                spent[state].setdefault(name, []).append(pct)
        act(host_page, type="recording_toggle", on=False)
        time.sleep(2)
        mean = {
            state: {name: round(sum(v) / len(v), 1) for name, v in by_name.items()}
            for state, by_name in spent.items()
        }
        recorded = Recording.objects.filter(space=space).exists()
        return {
            "pct_of_core_off": mean["off"],
            "pct_of_core_on": mean["on"],
            "recording_cost_pct": {
                name: round(mean["on"][name] - mean["off"][name], 1) for name in mean["on"]
            },
            "recording_made": recorded,
        }
    finally:
        for browser in browsers.values():
            browser.close()
        stop_process(server.proc)
        if janus_process is not None:
            stop_janus(janus_process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "capture", "processing"], default="all")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--window", type=float, default=15)
    parser.add_argument("--modes", default="p2p,janus")
    args = parser.parse_args()
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="spaces-bench-recording-media-")
    workdir = browser_bench_django("spaces-bench-recording-")
    result: dict = {"bench": "recording"}
    if args.part in ("all", "capture"):
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            result["capture"] = {
                mode: capture_cpu(mode, args.window, workdir, playwright) for mode in args.modes.split(",")
            }
    if args.part in ("all", "processing"):
        result["processing"] = processing(args.minutes, workdir)
    result["cpus"] = os.cpu_count()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
