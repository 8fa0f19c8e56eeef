"""Live captions through the real server: recogniser cost, caption delay, accuracy, and the room's
fan-out while speakers are captioned.

    .venv/bin/python bench/captions.py [--listeners 1000] [--toggles 30]

One daphne (spaces_project.asgi, a fresh SQLite file, the default 2 recognition workers) and one
live Space with captions on and three unmuted speakers. Each speaker streams espeak-ng sentences
(with a quiet noise floor, a second of quiet between them) over the captions uplink at real time,
in 100 ms frames, as captions.js does; a listener's Space socket receives the `captions` frames.

- rtf_per_speaker: CPU seconds of the recognition worker processes (from /proc) / seconds of
  audio submitted, i.e. the cost of one speaker in one second. Target < 0.5.
- delay: a caption's audio ends at Space-start + `end` (the server's clock is this machine's).
  `word_delay` is from a moment of speech to the first caption line (partial or final) on the
  listener's socket that covers it: every 0.1 s of each utterance is one sample. `final_delay`
  is from the end of an utterance to its settled line (the endpointer first waits 0.5 s of
  quiet). Targets: word p95 < 1.5 s, final p95 < 2 s.
- wer: word error rate of the finals against the sentences spoken (word-level Levenshtein, after
  Whisper's English normaliser, as in bench/captions_engine.py).
- fanout_*: bench/ws_fanout.py's measurement (the host toggles mute, N listeners), first without
  captions, then while the three speakers are captioned. The machine has 2 cores, shared by the
  clients, the server and the recognisers.

Runs with 1 and then 3 simultaneous speakers. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import process_cpu_seconds, signed_in_session_data, signed_in_socket  # noqa: E402
from rooms.captions.engine import DEFAULT_ENGINE  # noqa: E402


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fanout = _load("ws_fanout")
engine_bench = _load("captions_engine")

FRAME = 3200  # 100 ms
FRAME_S = 0.1
SPEAKERS = 3


def log(message: str) -> None:
    print(f"[captions {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def seed_speakers(space_id: int) -> tuple[list[tuple[int, str]], float]:
    """Three speakers on stage, unmuted, with sessions; captions on. Returns [(user id, session)]
    and the Space's start as a Unix time."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.models import User
    from rooms.models import Participant, Space

    Space.objects.filter(pk=space_id).update(captions_enabled=True)
    store = SessionStore()
    out = []
    for i in range(SPEAKERS):
        user = User.objects.create(username=f"bench_speaker{i}", display_name=f"Speaker {i}")
        key = f"benchspk{user.pk:024d}"
        data = signed_in_session_data(user)
        Session.objects.create(
            session_key=key,
            session_data=store.encode(data),
            expire_date=timezone.now() + timezone.timedelta(days=1),
        )
        Participant.objects.create(
            space_id=space_id,
            user=user,
            role=Participant.Role.SPEAKER,
            muted=False,
            stage_since=timezone.now(),
        )
        out.append((user.pk, key))
    return out, Space.objects.get(pk=space_id).started_at.timestamp()


def host_muted(space_id: int) -> bool:
    from rooms.models import Participant, Space

    space = Space.objects.get(pk=space_id)
    return Participant.objects.get(space=space, user_id=space.host_id).muted


def space_version(space_id: int) -> int:
    from rooms.models import Space

    return Space.objects.get(pk=space_id).version


def cpu_pcts(pid: int, server_before: float, client_before: float, wall_before: float) -> dict:
    """CPU use (% of one core) of daphne and of this client process since the given moments."""
    wall = time.monotonic() - wall_before
    return {
        "daphne_cpu_pct": round(100 * (process_cpu_seconds(pid) - server_before) / wall),
        "clients_cpu_pct": round(100 * (time.process_time() - client_before) / wall),
    }


def worker_cpu_seconds(daphne_pid: int) -> float:
    """CPU seconds (user + system) of daphne's child processes: the recognition workers."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == daphne_pid:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def stream(url: str, key: str, pcm: bytes, stop: asyncio.Event | None = None) -> float:
    """Send `pcm` at real time in 100 ms frames (looping until `stop` if given); seconds sent."""
    ws = await signed_in_socket(url, key)
    status = json.loads(await ws.recv())
    if not status.get("sending"):
        raise RuntimeError(f"the speaker may not be captioned: {status}")
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    start = time.monotonic()
    sent = 0
    while True:
        for frame in frames:
            # A microphone hands over a frame once its 100 ms have been spoken.
            await asyncio.sleep(max(0.0, start + (sent + 1) * FRAME_S - time.monotonic()))
            if stop is not None and stop.is_set():
                await ws.close()
                return sent * FRAME_S
            await ws.send(frame)
            sent += 1
        if stop is None:
            break
    await asyncio.sleep(1.5)  # let the last utterance settle before the uplink closes
    await ws.close()
    return sent * FRAME_S


async def captioned(
    server: str, space_id: int, speakers, listener_key: str, space_started: float, pid: int, sentences
):
    """The speakers each read the sentences at once; what the listener sees."""
    workdir = Path(tempfile.mkdtemp(prefix="captions-", dir=ROOT / "var"))
    try:
        recordings = [
            await asyncio.to_thread(engine_bench.recording, sentences, workdir, i + 1)
            for i in range(len(speakers))
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    listener = await signed_in_socket(f"{server}/ws/spaces/{space_id}/", listener_key)
    received: list[tuple[float, dict]] = []

    async def read():
        async for message in listener:
            if '"type":"captions"' in message:
                arrived = time.time()
                received.extend((arrived, line) for line in json.loads(message)["lines"])

    reader = asyncio.create_task(read())
    cpu_before = worker_cpu_seconds(pid)
    audio = await asyncio.gather(
        *(
            stream(f"{server}/ws/spaces/{space_id}/captions/", key, pcm)
            for (_, key), pcm in zip(speakers, recordings, strict=True)
        )
    )
    await asyncio.sleep(1.0)
    cpu = worker_cpu_seconds(pid) - cpu_before
    reader.cancel()
    await listener.close()

    ids = [uid for uid, _ in speakers]

    # The server dates a stream from its first frame, which arrives one frame after speech began.
    def delay(at: float, event: dict) -> float:
        return at - (space_started + event["end"] - FRAME_S)

    word_delays = []
    for at, final in received:
        if final["user_id"] not in ids or not final["final"]:
            continue
        shown = sorted(
            (a, e["end"])
            for a, e in received
            if e["user_id"] == final["user_id"] and e["utterance"] == final["utterance"]
        )
        moment = final["start"]
        while moment < final["end"]:
            first = min((a for a, end in shown if end >= moment), default=at)
            word_delays.append(first - (space_started + moment - FRAME_S))
            moment += 0.1
    final_delays = [delay(at, e) for at, e in received if e["user_id"] in ids and e["final"]]
    errors = words = 0
    for uid in ids:
        hypothesis = engine_bench.normalise(
            " ".join(e["text"] for _, e in received if e["user_id"] == uid and e["final"])
        )
        reference = engine_bench.normalise(" ".join(sentences))
        errors += engine_bench.word_errors(reference, hypothesis)
        words += len(reference)
    pct = fanout.percentile
    return {
        "speakers": len(speakers),
        "audio_s_per_speaker": round(audio[0], 1),
        "rtf_per_speaker": round(cpu / sum(audio), 3),
        "word_delay_p50_s": round(pct(word_delays, 50), 2),
        "word_delay_p95_s": round(pct(word_delays, 95), 2),
        "final_delay_p50_s": round(pct(final_delays, 50), 2),
        "final_delay_p95_s": round(pct(final_delays, 95), 2),
        "final_delay_max_s": round(max(final_delays), 2) if final_delays else None,
        "captions_received": len(received),
        "wer": round(errors / words, 3) if words else None,
    }


async def fanout_round(
    server: str, space_id: int, host, crowd, toggles: int, version: int
) -> tuple[dict, int]:
    muted = await asyncio.to_thread(host_muted, space_id)

    async def toggle(number: int) -> None:
        # Flip from the host's state at the start, so every toggle is a change (and an event).
        unmute = muted if (number - version) % 2 else not muted
        await host.send(json.dumps({"type": "unmute_self" if unmute else "mute_self"}))

    numbers = list(range(version + 1, version + 1 + toggles))
    result = await fanout.measure(crowd, toggle, numbers)
    return fanout.figures("", result), version + toggles


async def main(args) -> dict:
    fanout.raise_fd_limit(2 * args.listeners + 512)
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-captions-", dir=ROOT / "var"))
    db_path = workdir / "bench.sqlite3"
    space_id, host_key, listener_keys = await asyncio.to_thread(
        fanout.prepare_database, db_path, args.listeners
    )
    speakers, space_started = await asyncio.to_thread(seed_speakers, space_id)
    port = fanout.free_port()
    proc = fanout.start_daphne(
        port, {"SQLITE_PATH": str(db_path)}, "spaces_project.asgi:application", workdir / "daphne.log"
    )
    server = f"ws://127.0.0.1:{port}"
    out: dict = {
        "bench": "captions",
        "engine": DEFAULT_ENGINE,
        "listeners": args.listeners,
        "toggles": args.toggles,
        "cpus": os.cpu_count(),
    }
    try:
        host = await signed_in_socket(f"{server}/ws/spaces/{space_id}/", host_key)
        snapshot = json.loads(await host.recv())
        version = snapshot["v"]
        drain = asyncio.create_task(fanout._drain(host))
        sentences = engine_bench.SENTENCES
        for count in (1, SPEAKERS):
            result = await captioned(
                server, space_id, speakers[:count], listener_keys[0], space_started, proc.pid, sentences
            )
            log(f"{count} speaker(s): {result}")
            out[f"s{count}"] = result

        crowd = fanout.Crowd('"type":"muted"', "v")
        connected = await crowd.open(
            f"{server}/ws/spaces/{space_id}/",
            [[("Cookie", f"sessionid={k}")] for k in listener_keys],
            args.listeners,
        )
        await asyncio.sleep(1.5)
        # The snapshot's version may have moved while the crowd joined; ask the server.
        version = await asyncio.to_thread(space_version, space_id)
        server_before, wall_before, client_before = (
            process_cpu_seconds(proc.pid),
            time.monotonic(),
            time.process_time(),
        )
        quiet, version = await fanout_round(server, space_id, host, crowd, args.toggles, version)
        quiet.update(cpu_pcts(proc.pid, server_before, client_before, wall_before))
        log(f"fanout without captions: {quiet}")
        stop = asyncio.Event()
        pcm = await asyncio.to_thread(engine_bench.recording, sentences, workdir, 9)
        streams = [
            asyncio.create_task(stream(f"{server}/ws/spaces/{space_id}/captions/", key, pcm, stop))
            for _, key in speakers
        ]
        await asyncio.sleep(3.0)  # the speakers are talking and being captioned
        cpu_before = worker_cpu_seconds(proc.pid)
        server_before, wall_before, client_before = (
            process_cpu_seconds(proc.pid),
            time.monotonic(),
            time.process_time(),
        )
        busy, version = await fanout_round(server, space_id, host, crowd, args.toggles, version)
        busy.update(cpu_pcts(proc.pid, server_before, client_before, wall_before))
        stop.set()
        audio = sum(await asyncio.gather(*streams))
        log(f"fanout with {SPEAKERS} captioned speakers: {busy}")
        out.update(
            fanout_connected=connected,
            fanout=quiet,
            fanout_captioned=busy,
            fanout_captioned_worker_cpu_s=round(worker_cpu_seconds(proc.pid) - cpu_before, 1),
            fanout_captioned_audio_s=round(audio, 1),
        )
        drain.cancel()
        await host.close()
        await crowd.close()
        return out
    finally:
        fanout.stop(proc)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--toggles", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(json.dumps(asyncio.run(main(args))))
