"""Turning a capture into a replay (run by the Celery task rooms.tasks.recording_process).

PyAV (FFmpeg's libraries, already installed for the captions' faster-whisper) decodes the capture
and encodes two files: Ogg Opus for the web player, AAC in .m4a for podcast apps (many don't play
Opus). The audio is made mono 48 kHz, its loudness brought to LOUDNESS_TARGET and its peaks kept
under PEAK_CEILING.
"""

from __future__ import annotations

import io
import logging
import struct
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from ..models import Recording, RecordingChunk

logger = logging.getLogger(__name__)

RATE = 48_000
LOUDNESS_TARGET = -16.0  # LUFS-like: the level podcast apps expect for speech
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS
MAX_GAIN = 10 ** (30.0 / 20)  # silence stays silence: never more than +30 dB
WAVEFORM_BARS = 160
WEB_BITRATE = 48_000
PODCAST_BITRATE = 64_000


class CaptureMissing(Exception):
    """Nothing usable was captured."""


# --- reading the capture ---------------------------------------------------------------------------


def _decode(source, *, fmt: str | None = None) -> np.ndarray:
    """Every sample of the first audio stream of `source` as mono float32 at RATE; what a damaged
    tail can't give is left out (a capture cut by a crash still decodes up to the cut)."""
    pieces: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    try:
        with av.open(source, format=fmt) as container:
            stream = container.streams.audio[0]
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        pieces.append(out.to_ndarray().reshape(-1))
            except (av.error.InvalidDataError, av.error.EOFError, ValueError):
                logger.warning("capture ends early (damaged tail); keeping what decoded")
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
    except (av.error.InvalidDataError, IndexError) as exc:
        logger.warning("could not read a capture piece: %s", exc)
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _chunks_audio(recording: Recording) -> np.ndarray:
    """Peer-to-peer: each browser session's chunks, in order, are one WebM stream; sessions follow
    each other in the order they started (a reload starts a new one)."""
    sessions: dict[str, list[RecordingChunk]] = defaultdict(list)
    for chunk in RecordingChunk.objects.filter(recording=recording).order_by("received_at", "pk"):
        sessions[chunk.session].append(chunk)
    parts = []
    for chunks in sessions.values():
        data = bytearray()
        for expected, chunk in enumerate(sorted(chunks, key=lambda c: c.seq)):
            if chunk.seq != expected:
                break  # the stream can't continue past a missing chunk
            with default_storage.open(chunk.file.name, "rb") as f:
                data += f.read()
        if data:
            parts.append(_decode(io.BytesIO(bytes(data)), fmt="webm"))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def read_wav_tolerant(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV as mono float32 at RATE, trusting the file's length over its header: the
    header of a WAV whose writer was killed still says 0 bytes of data."""
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return np.zeros(0, dtype=np.float32)
    pos, channels, rate, data_at = 12, 1, RATE, None
    while pos + 8 <= len(raw):
        tag, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if tag == b"fmt ":
            channels, rate = struct.unpack("<HI", raw[pos + 10 : pos + 16])
        if tag == b"data":
            data_at = pos + 8
            break
        pos += 8 + size + (size & 1)
    if data_at is None:
        return np.zeros(0, dtype=np.float32)
    body = raw[data_at:]
    body = body[: len(body) - len(body) % (2 * channels)]
    samples = np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0
    mono = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
    if rate != RATE and len(mono):
        positions = np.arange(0, len(mono), rate / RATE)
        mono = np.interp(positions, np.arange(len(mono)), mono).astype(np.float32)
    return mono


def _janus_audio(recording: Recording) -> np.ndarray:
    from ..janus import recording_dir

    parts = []
    for name in recording.janus_files:
        path = recording_dir() / Path(name).name
        if path.exists():
            parts.append(read_wav_tolerant(path))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def capture_audio(recording: Recording) -> np.ndarray:
    if recording.mode == Recording.Mode.JANUS:
        return _janus_audio(recording)
    return _chunks_audio(recording)


# --- shaping the sound -------------------------------------------------------------------------------


def loudness(samples: np.ndarray) -> float:
    """Integrated loudness in dB, gated as ITU-R BS.1770 gates it (400 ms blocks, -70 dB absolute
    and -10 dB relative gates), without its K-weighting filter: speech sits within a dB of it."""
    block = int(0.4 * RATE)
    n = len(samples) // block
    if n == 0:
        return -120.0
    power = np.mean(samples[: n * block].reshape(n, block).astype(np.float64) ** 2, axis=1)
    levels = -0.691 + 10 * np.log10(power + 1e-12)
    gated = power[levels > -70]
    if not len(gated):
        return -120.0
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10
    kept = gated[(-0.691 + 10 * np.log10(gated + 1e-12)) > relative]
    return float(-0.691 + 10 * np.log10(kept.mean()))


def normalise(samples: np.ndarray) -> np.ndarray:
    level = loudness(samples)
    if level <= -70:
        return samples
    gain = min(10 ** ((LOUDNESS_TARGET - level) / 20), MAX_GAIN)
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak * gain > PEAK_CEILING:
        gain = PEAK_CEILING / peak
    samples *= np.float32(gain)  # in place: an hour of audio is hundreds of megabytes
    return samples


def waveform(samples: np.ndarray, bars: int = WAVEFORM_BARS) -> list[float]:
    """The loudness (RMS) of each of `bars` equal slices, 0 to 1 against the loudest: the replay
    page's waveform. RMS rather than the peak: over an hour each slice is 20 s long, and nearly
    every slice of speech holds one near-full-scale peak, which would draw a flat block."""
    if not len(samples):
        return []
    edges = np.linspace(0, len(samples), bars + 1).astype(int)
    slices = zip(edges[:-1], edges[1:], strict=True)
    levels = [
        float(np.sqrt(np.mean(np.square(samples[a:b], dtype=np.float64)))) if b > a else 0.0
        for a, b in slices
    ]
    top = max(levels) or 1.0
    return [round(level / top, 3) for level in levels]


# --- encoding ----------------------------------------------------------------------------------------


def encode(samples: np.ndarray, path: Path, *, fmt: str, codec: str, bit_rate: int) -> None:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=RATE, layout="mono")
        stream.bit_rate = bit_rate
        step = RATE  # one second per frame handed to the encoder; it re-frames as it needs
        pts = 0
        for start in range(0, len(samples), step):
            piece = np.ascontiguousarray(samples[start : start + step]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = pts
            pts += piece.shape[1]
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def recording_process(*, recording_id: int) -> Recording | None:
    """Make the replay files of an ended Space's recording and publish it (state READY). Safe to
    run twice: a recording already processed, or deleted meanwhile, is left alone."""
    recording = Recording.objects.select_related("space").filter(pk=recording_id).first()
    if recording is None or recording.state == Recording.State.READY:
        return recording
    samples = capture_audio(recording)
    if not len(samples):
        Recording.objects.filter(pk=recording.pk).update(
            state=Recording.State.FAILED, error="Nothing was captured, so there is no replay."
        )
        return None
    samples = normalise(samples)
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        web = Path(tmp) / "replay.opus"
        podcast = Path(tmp) / "replay.m4a"
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [
                pool.submit(encode, samples, web, fmt="ogg", codec="libopus", bit_rate=WEB_BITRATE),
                pool.submit(encode, samples, podcast, fmt="ipod", codec="aac", bit_rate=PODCAST_BITRATE),
            ]
            for job in jobs:
                job.result()
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        with transaction.atomic():
            recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
            if recording is None:
                return None  # deleted while we worked
            old = [f.name for f in (recording.web_audio, recording.podcast_audio) if f]
            with web.open("rb") as f:
                recording.web_audio.save(f"replay-{stamp}.opus", File(f), save=False)
            with podcast.open("rb") as f:
                recording.podcast_audio.save(f"replay-{stamp}.m4a", File(f), save=False)
            recording.web_size = recording.web_audio.size
            recording.podcast_size = recording.podcast_audio.size
            recording.duration_seconds = round(len(samples) / RATE, 3)
            recording.waveform = waveform(samples)
            recording.state = Recording.State.READY
            recording.error = ""
            recording.processed_at = timezone.now()
            recording.save()
            for name in old:
                transaction.on_commit(lambda name=name: default_storage.delete(name))
    return recording
